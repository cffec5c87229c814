"""User and item towers: each turns indices into vectors of the model's width.

Item towers expose `all_items()` because full-ranking evaluation and the history user tower need every item's
vector at once; computing it once per step/evaluation is what keeps ranking vectorised.
"""

from __future__ import annotations

import torch
from torch import nn

from lmrec.errors import ConfigError
from lmrec.sparse import CSRMatrix


def _id_embedding(num: int, dim: int, init_std: float) -> nn.Embedding:
    table = nn.Embedding(num, dim)
    nn.init.normal_(table.weight, std=init_std)
    return table


class IdItemTower(nn.Module):
    """One learned vector per item: classic collaborative filtering."""

    uses_text = False

    def __init__(self, num_items: int, dim: int, init_std: float = 0.05) -> None:
        super().__init__()
        self.embedding = _id_embedding(num_items, dim, init_std)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.embedding(items)

    def all_items(self) -> torch.Tensor:
        return self.embedding.weight


class TextItemTower(nn.Module):
    """Frozen text embeddings (computed once, cached on disk) with an optional learned projection.

    The matrix is a persistent buffer so a checkpoint is self-contained: evaluating it gives the training run's
    numbers even on a machine whose encoder would round differently.
    """

    uses_text = True

    def __init__(self, text_embeddings: torch.Tensor, dim: int, project: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("text_embeddings", text_embeddings.float().clone(), persistent=True)
        text_dim = text_embeddings.shape[1]
        if project:
            self.projection: nn.Module = nn.Linear(text_dim, dim)
        elif text_dim != dim:
            raise ConfigError(
                f"model.item_tower.project=false needs model.dim ({dim}) equal to the encoder width ({text_dim})"
            )
        else:
            self.projection = nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.projection(self.dropout(self.text_embeddings[items]))

    def all_items(self) -> torch.Tensor:
        return self.projection(self.dropout(self.text_embeddings))


class HybridItemTower(nn.Module):
    """Text vector plus an ID embedding: text carries cold items, the ID learns what text cannot say."""

    uses_text = True

    def __init__(
        self,
        text_embeddings: torch.Tensor,
        num_items: int,
        dim: int,
        combine: str = "sum",
        dropout: float = 0.0,
        init_std: float = 0.05,
    ) -> None:
        super().__init__()
        if combine not in ("sum", "concat"):
            raise ConfigError(f"model.item_tower.combine={combine!r}; expected 'sum' or 'concat'")
        self.text = TextItemTower(text_embeddings, dim, project=True, dropout=dropout)
        self.ids = IdItemTower(num_items, dim, init_std)
        self.combine = combine
        self.mix = nn.Linear(2 * dim, dim) if combine == "concat" else None

    def _merge(self, text: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return text + ids if self.mix is None else self.mix(torch.cat([text, ids], dim=-1))

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self._merge(self.text(items), self.ids(items))

    def all_items(self) -> torch.Tensor:
        return self._merge(self.text.all_items(), self.ids.all_items())


class IdUserTower(nn.Module):
    """One learned vector per user."""

    needs_item_vectors = False

    def __init__(self, num_users: int, dim: int, init_std: float = 0.05) -> None:
        super().__init__()
        self.embedding = _id_embedding(num_users, dim, init_std)

    def forward(self, users: torch.Tensor, item_vectors: torch.Tensor | None = None) -> torch.Tensor:
        return self.embedding(users)


class HistoryUserTower(nn.Module):
    """A user is the mean of the vectors of their training items, passed through a learned projection.

    Needs no per-user parameters, so it also serves users unseen at training time. The history matrix holds
    training interactions only, so validation and test items never leak into the user vector.
    """

    needs_item_vectors = True

    def __init__(self, history: CSRMatrix, dim: int) -> None:
        super().__init__()
        lengths = history.row_lengths()
        self.shape = history.shape
        self.register_buffer("crow", history.crow.clone(), persistent=False)
        self.register_buffer("col", history.col.clone(), persistent=False)
        self.register_buffer(
            "weights", (1.0 / lengths.clamp_min(1).float()).repeat_interleave(lengths), persistent=False
        )
        self.projection = nn.Linear(dim, dim)

    def forward(self, users: torch.Tensor, item_vectors: torch.Tensor | None = None) -> torch.Tensor:
        if item_vectors is None:
            raise ValueError("the history user tower needs the item vectors of the whole catalogue")
        batch_row, positions = CSRMatrix(self.crow, self.col, self.shape).row_positions(users)
        weights = self.weights[positions].unsqueeze(1).to(item_vectors.dtype)
        pooled = torch.zeros(len(users), item_vectors.shape[1], device=item_vectors.device, dtype=item_vectors.dtype)
        pooled.index_add_(0, batch_row, item_vectors[self.col[positions]] * weights)
        return self.projection(pooled)
