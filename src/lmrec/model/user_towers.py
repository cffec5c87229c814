"""User towers: each turns user indices into vectors of the model's width, possibly from item vectors.

The contract (`UserTower`): a tower first says which item vectors it needs for a batch of users (`lookup`), the
module computes them together with the batch's own items (so a tuned encoder encodes each distinct item once per
step), and then `forward(users, lookup, item_vectors)` builds the user vectors. A tower that needs nothing from
the items returns an empty lookup. What a tower needs from the data it names as constructor arguments (e.g.
`history`, the training interactions); the builder provides them (`lmrec.config.arguments`). The module never asks
which tower it holds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError


class ItemLookup(NamedTuple):
    """The items whose vectors a user tower needs for a batch, and the tower's own bookkeeping for `forward`."""

    items: torch.Tensor
    layout: Any = None


class UserTower(nn.Module):
    """Base class of user towers: by default a tower needs no item vectors."""

    def lookup(self, users: torch.Tensor) -> ItemLookup:
        """Item indices (any shape) whose vectors `forward` needs for `users`."""
        return ItemLookup(users.new_empty(0))

    def forward(self, users: torch.Tensor, lookup: ItemLookup, item_vectors: torch.Tensor) -> torch.Tensor:
        """One vector per user; `item_vectors` holds the vectors of `lookup.items` (shape [*items.shape, dim])."""
        raise NotImplementedError

    #: Why this tower cannot read a user it never trained on, or None when it can (`lookup_histories`).
    new_users: str | None = "it learns one vector per training user and has none for a user it never saw"

    def lookup_histories(self, histories: list[torch.Tensor]) -> ItemLookup:
        """What `forward` needs for users given only by their items (each a tensor of item indices, oldest first):
        a tower without per-user parameters serves a user it never saw (`lmrec.serving`)."""
        raise NotImplementedError(self.new_users)


def _id_embedding(num: int, dim: int, init_std: float) -> nn.Embedding:
    table = nn.Embedding(num, dim)
    nn.init.normal_(table.weight, std=init_std)
    return table


class IdUserTower(UserTower):
    """One learned vector per user."""

    def __init__(self, num_users: int, dim: int, init_std: float = 0.05) -> None:
        super().__init__()
        self.embedding = _id_embedding(num_users, dim, init_std)

    def forward(self, users: torch.Tensor, lookup: ItemLookup, item_vectors: torch.Tensor) -> torch.Tensor:
        return self.embedding(users)


class HistoryUserTower(UserTower):
    """A user is the mean of the vectors of their training items, passed through a learned projection.

    Needs no per-user parameters, so it also serves users unseen at training time. The history matrix holds
    training interactions only, so validation and test items never leak into the user vector. Each distinct user
    of a batch is pooled once, and the result is gathered back to the batch's rows.
    """

    def __init__(self, history: CSRMatrix, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"model.user_tower.dropout={dropout}; expected a fraction in [0, 1)")
        self.dropout = float(dropout)
        lengths = history.row_lengths()
        self.shape = history.shape
        self.register_buffer("crow", history.crow.clone(), persistent=False)
        self.register_buffer("col", history.col.clone(), persistent=False)
        self.register_buffer(
            "weights", (1.0 / lengths.clamp_min(1).float()).repeat_interleave(lengths), persistent=False
        )
        self.projection = nn.Linear(dim, dim)

    new_users = None
    #: Reads a user from their items, so test time may hand it training + validation items (`task.fold_validation`).
    reads_history = True

    def lookup_histories(self, histories: list[torch.Tensor]) -> ItemLookup:
        """The same lookup for users given by their items: each history's mean, as for a training user."""
        device = histories[0].device if histories else self.crow.device
        lengths = torch.tensor([len(h) for h in histories], dtype=torch.long, device=device)
        items = torch.cat(histories) if histories else torch.empty(0, dtype=torch.long, device=device)
        batch_row = torch.repeat_interleave(torch.arange(len(histories), device=device), lengths)
        weights = (1.0 / lengths.clamp_min(1).float()).repeat_interleave(lengths)
        return ItemLookup(items, (len(histories), torch.arange(len(histories), device=device), batch_row, weights))

    def lookup(self, users: torch.Tensor) -> ItemLookup:
        """Every training item of every distinct user; the layout is (row of each user among the distinct users,
        distinct user of each history entry, its weight 1/|history|)."""
        distinct, user_row = torch.unique(users, return_inverse=True)
        batch_row, positions = CSRMatrix(self.crow, self.col, self.shape).row_positions(distinct)
        weights = self.weights[positions]
        if self.training and self.dropout > 0:
            batch_row, positions, weights = self._drop(batch_row, positions, len(distinct))
        return ItemLookup(self.col[positions], (len(distinct), user_row, batch_row, weights))

    def _drop(self, batch_row: torch.Tensor, positions: torch.Tensor, num_rows: int):
        """Training only: each history entry is dropped with probability `dropout` and the rest re-averaged
        (as in denoising autoencoders, Mult-DAE). Without it a softmax objective learns that a user's positives are
        the items already in the history it reads, which evaluation masks. A user keeps at least one entry."""
        draws = torch.rand(len(positions), device=positions.device)
        keep = draws >= self.dropout
        kept_any = torch.zeros(num_rows, dtype=torch.bool, device=keep.device).index_put_(
            (batch_row,), keep, accumulate=True
        )
        # A user who lost every entry keeps the one with the largest draw: a uniformly random one.
        largest = torch.zeros(num_rows, device=draws.device).scatter_reduce(0, batch_row, draws, "amax")
        keep |= ~kept_any[batch_row] & (draws == largest[batch_row])
        batch_row, positions = batch_row[keep], positions[keep]
        counts = torch.bincount(batch_row, minlength=num_rows).clamp_min(1).float()
        return batch_row, positions, 1.0 / counts[batch_row]

    def additive_terms(self, item_vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The user vector of a history as a sum: one term per history item [n, dim] plus a constant [dim].
        W·mean(v) + b = Σ W·v_j / n + b: what makes a dot-product score exactly attributable to history items."""
        weight, bias = self.projection.weight, self.projection.bias
        return item_vectors @ weight.T / max(len(item_vectors), 1), bias

    def forward(self, users: torch.Tensor, lookup: ItemLookup, item_vectors: torch.Tensor) -> torch.Tensor:
        num_distinct, user_row, batch_row, weights = lookup.layout
        pooled = torch.zeros(num_distinct, item_vectors.shape[1], device=item_vectors.device, dtype=item_vectors.dtype)
        pooled.index_add_(0, batch_row, item_vectors * weights.unsqueeze(1).to(item_vectors.dtype))
        return self.projection(pooled)[user_row]
