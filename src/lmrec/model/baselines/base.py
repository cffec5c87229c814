"""The contract of a fitted baseline: a recommender that is fitted from the training split, not trained in epochs.

Classic recommenders (popularity, ItemKNN, EASE, ALS, rating biases) are what a language model must beat, so they
run inside lmrec on the identical split, evaluator and run folder. A baseline is an `nn.Module` whose state lives in
buffers (so a checkpoint holds the fitted model and `lmrec-eval` re-tests it), fitted once by `fit()` from the
data-derived constructor arguments it names (`history`, `train_interactions`, ...: `lmrec.config.arguments`).
A new baseline is one class here plus one `conf/model/<name>.yaml` with a `baseline:` node.
"""

from __future__ import annotations

import torch
from torch import nn

from lmrec.data.sparse import CSRMatrix


class FittedBaseline(nn.Module):
    """Base class: `fit()` once, then score users against the catalogue (and pairs, by gathering)."""

    #: True when scores are ratings on the data's scale (usable by the rating task), False for ranking scores.
    predicts_ratings: bool = False

    def fit(self) -> None:
        raise NotImplementedError

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores [users, all items]."""
        raise NotImplementedError

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.score_all(users).gather(1, items.unsqueeze(1)).squeeze(1)

    # -- serving (lmrec.serving): users given by their items, an item's neighbours, a score's evidence ------------
    #: Why the model cannot score a user it never trained on, or None when `score_histories` can.
    new_users: str | None = "it keeps fitted values per training user and none for a user it never saw"
    #: Whether a user's score depends on their history (popularity and the rating biases do not).
    uses_history = True

    def score_histories(self, histories: CSRMatrix) -> torch.Tensor:
        """Scores [rows, all items] of users given only by their items (one row of `histories` each), computed
        the way `score_all` computes a training user's, so the same history gives the same scores."""
        raise NotImplementedError(self.new_users)

    def item_neighbours(self, item: int) -> torch.Tensor:
        """How strongly `item` points to every item [items], in the model's own item-item terms."""
        raise NotImplementedError("it has no item-item relation")

    def contributions(self, history: torch.Tensor, item: int) -> torch.Tensor | None:
        """Each history item's exact share of `item`'s score [len(history)], where the score is a sum over the
        history (EASE, ItemKNN); None for a model whose score is not."""
        return None


def sparse_rows(matrix: CSRMatrix, rows: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The given rows of a 0/1 CSR matrix as a torch sparse COO tensor [len(rows), num_cols], for `X_u @ W`
    products that never materialise the dense user rows' zeros."""
    batch_row, positions = matrix.row_positions(rows)
    indices = torch.stack([batch_row, matrix.col[positions]])
    values = torch.ones(indices.shape[1], dtype=dtype)
    return torch.sparse_coo_tensor(indices, values, (len(rows), matrix.shape[1]), check_invariants=True).coalesce()


def scipy_matrix(matrix: CSRMatrix, values=None):
    """The CSR matrix as scipy's (the sparse Gram products of ItemKNN and EASE, and `implicit`'s input format)."""
    import scipy.sparse as sp

    data = values if values is not None else torch.ones(len(matrix.col)).numpy()
    return sp.csr_matrix((data, matrix.col.numpy(), matrix.crow.numpy()), shape=matrix.shape)
