"""`model=itemknn`: item-based nearest neighbours with shrunk cosine similarity (Sarwar et al. 2001; the shrinkage
term as in RecBole and Koren's neighbourhood models). sim(i, j) = |U_i ∩ U_j| / (‖U_i‖ ‖U_j‖ + shrink), each item
keeps its `neighbours` most similar items, and score(u, i) = Σ over the user's training items j among i's
neighbours of sim(i, j).
"""

from __future__ import annotations

import numpy as np
import torch

from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError
from lmrec.model.baselines.base import FittedBaseline, scipy_matrix


class ItemKNN(FittedBaseline):
    """Neighbour lists are kept as [items, k] index and weight buffers, not a dense [items, items] matrix."""

    def __init__(self, history: CSRMatrix, neighbours: int = 100, shrink: float = 35.0, block: int = 2048) -> None:
        super().__init__()
        if isinstance(neighbours, bool) or int(neighbours) < 1:
            raise ConfigError(f"model.baseline.neighbours={neighbours}; expected at least 1")
        if not float(shrink) >= 0:
            raise ConfigError(f"model.baseline.shrink={shrink}; expected 0 or more")
        self.history = history
        n = history.shape[1]
        self.k = min(int(neighbours), max(n - 1, 1))
        self.shrink = float(shrink)
        self.block = int(block)
        self.register_buffer("neighbour_index", torch.zeros(n, self.k, dtype=torch.long))
        self.register_buffer("neighbour_weight", torch.zeros(n, self.k))

    def fit(self) -> None:
        x = scipy_matrix(self.history).tocsc()
        norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())  # 0/1 entries: ‖U_i‖ = sqrt(#users of i)
        n = x.shape[1]
        index, weight = torch.zeros(n, self.k, dtype=torch.long), torch.zeros(n, self.k)
        for start in range(0, n, self.block):  # column blocks keep the dense co-occurrence at [items, block]
            stop = min(start + self.block, n)
            overlap = torch.from_numpy((x.T @ x[:, start:stop]).toarray().astype(np.float32)).T  # [block, items]
            denominator = torch.from_numpy(np.outer(norms[start:stop], norms).astype(np.float32)) + self.shrink
            similarity = overlap / denominator.clamp_min(1e-12)
            similarity[torch.arange(stop - start), torch.arange(start, stop)] = 0.0  # an item is not its own neighbour
            top = torch.topk(similarity, self.k, dim=1)
            index[start:stop], weight[start:stop] = top.indices, top.values
        self.neighbour_index, self.neighbour_weight = index, weight

    def neighbour_matrix(self) -> torch.Tensor:
        """Sparse [items i, items j] holding sim(i, j) where j is one of i's neighbours. Built per call (a cached
        copy made inside one inference pass cannot be reused outside it) from buffers already in row order."""
        n = self.neighbour_index.shape[0]
        rows = torch.arange(n, device=self.neighbour_index.device).repeat_interleave(self.k)
        indices = torch.stack([rows, self.neighbour_index.reshape(-1)])
        return torch.sparse_coo_tensor(
            indices, self.neighbour_weight.reshape(-1), (n, n), check_invariants=True
        ).coalesce()

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.score_histories(self.history, users)

    new_users = None

    def score_histories(self, histories: CSRMatrix, rows: torch.Tensor | None = None) -> torch.Tensor:
        """sum over the history of each item's similarity to it: one code path for every user."""
        rows = torch.arange(histories.shape[0]) if rows is None else rows.cpu()
        dense = histories.dense_rows(rows).to(self.neighbour_weight.device, torch.float32)  # [B, items]
        return torch.sparse.mm(self.neighbour_matrix(), dense.T).T

    def item_neighbours(self, item: int) -> torch.Tensor:
        """The item's own neighbour list: sim(item, j) for its k most similar items, 0 elsewhere."""
        out = torch.zeros(self.neighbour_index.shape[0], device=self.neighbour_weight.device)
        out[self.neighbour_index[item]] = self.neighbour_weight[item]
        return out

    def contributions(self, history: torch.Tensor, item: int) -> torch.Tensor:
        """sim(item, j) for each history item j that is one of `item`'s neighbours (0 otherwise): the score is
        their sum, exactly."""
        weights = torch.zeros(self.neighbour_index.shape[0], device=self.neighbour_weight.device)
        weights[self.neighbour_index[item]] = self.neighbour_weight[item]
        return weights[history]
