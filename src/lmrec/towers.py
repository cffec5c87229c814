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
    """Item text vectors (from a frozen cached table or a trainable encoder) with an optional learned projection.

    The text source is injected by the builder according to `model.tuning`: a `FrozenTextTable` holds the cached
    embeddings as a persistent buffer so a checkpoint is self-contained; a `TunedTextEncoder` runs BERT on the
    items it is given (the module hands it each batch's distinct items only).
    """

    uses_text = True

    def __init__(self, text_source: nn.Module, dim: int, project: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.text = text_source
        text_dim = int(text_source.dim)
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
        return self.projection(self.dropout(self.text(items)))

    def all_items(self) -> torch.Tensor:
        return self.projection(self.dropout(self.text.all_items()))


class HybridItemTower(nn.Module):
    """Text vector plus an ID embedding: text carries cold items, the ID learns what text cannot say."""

    uses_text = True

    def __init__(
        self,
        text_source: nn.Module,
        num_items: int,
        dim: int,
        combine: str = "sum",
        dropout: float = 0.0,
        init_std: float = 0.05,
    ) -> None:
        super().__init__()
        if combine not in ("sum", "concat"):
            raise ConfigError(f"model.item_tower.combine={combine!r}; expected 'sum' or 'concat'")
        self.text = TextItemTower(text_source, dim, project=True, dropout=dropout)
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

    uses_history = False

    def __init__(self, num_users: int, dim: int, init_std: float = 0.05) -> None:
        super().__init__()
        self.embedding = _id_embedding(num_users, dim, init_std)

    def forward(self, users: torch.Tensor) -> torch.Tensor:
        return self.embedding(users)


class HistoryUserTower(nn.Module):
    """A user is the mean of the vectors of their training items, passed through a learned projection.

    Needs no per-user parameters, so it also serves users unseen at training time. The history matrix holds
    training interactions only, so validation and test items never leak into the user vector. The tower names
    the items it needs (`history`) and pools vectors it is handed, so the module can encode each distinct item
    of a step once, whether a row or a history asked for it.
    """

    uses_history = True

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

    def history(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(row in the batch, history item, weight 1/|history|) for every training item of every user."""
        batch_row, positions = CSRMatrix(self.crow, self.col, self.shape).row_positions(users)
        return batch_row, self.col[positions], self.weights[positions]

    def forward(
        self, users: torch.Tensor, history_vectors: torch.Tensor, batch_row: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Pool `history_vectors` (one per entry of `history(users)`) into one vector per user."""
        pooled = torch.zeros(
            len(users), history_vectors.shape[1], device=history_vectors.device, dtype=history_vectors.dtype
        )
        pooled.index_add_(0, batch_row, history_vectors * weights.unsqueeze(1).to(history_vectors.dtype))
        return self.projection(pooled)
