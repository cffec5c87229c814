"""User towers that read what a user wrote or is (`data.user_text`), alone or added to an ID or sequence tower."""

from __future__ import annotations

import torch
from torch import nn

from lmrec.data.sequences import UserSequences
from lmrec.errors import ConfigError
from lmrec.model.sequence_tower import SequenceUserTower
from lmrec.model.user_towers import IdUserTower, ItemLookup, UserTower


class TextUserTower(UserTower):
    """What the user wrote or is (`data.user_text`: review texts, tags, a demographic profile line), encoded by the
    text encoder (a frozen cached table or a tuned encoder, as `model/tuning` says) and projected to the model width.

    Needs no per-user ID, so it serves users unseen in training who have text. Each distinct user of a batch is
    encoded once (a tuned encoder runs once per distinct text)."""

    reads_sequences = False

    def __init__(self, user_text_source: nn.Module, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"model.user_tower.dropout={dropout}; expected a fraction in [0, 1)")
        self.text = user_text_source
        self.projection = nn.Linear(int(user_text_source.dim), dim)
        self.dropout = nn.Dropout(float(dropout))

    def vectors(self, users: torch.Tensor) -> torch.Tensor:
        distinct, inverse = torch.unique(users, return_inverse=True)
        return self.projection(self.dropout(self.text(distinct)))[inverse]

    def forward(self, users: torch.Tensor, lookup: ItemLookup, item_vectors: torch.Tensor) -> torch.Tensor:
        return self.vectors(users)


class HybridUserTower(UserTower):
    """The user's text vector (`TextUserTower`) added to an ID embedding (`base=id`) or to a sequence tower's
    output (`base=sequence`, at every position, so next-item prediction reads the user's text at each step).

    The text carries users with little history; the ID or the sequence learns what their text does not say.
    `sequence` holds the sequence tower's options (as in model/user_tower/sequence.yaml)."""

    def __init__(
        self,
        user_text_source: nn.Module,
        num_users: int,
        train_sequences: UserSequences,
        dim: int,
        base: str = "id",
        dropout: float = 0.0,
        init_std: float = 0.05,
        sequence: dict | None = None,
    ) -> None:
        super().__init__()
        if base not in ("id", "sequence"):
            raise ConfigError(f"model.user_tower.base={base!r}; expected 'id' or 'sequence'")
        self.text = TextUserTower(user_text_source, dim, dropout)
        if base == "id":
            self.base: UserTower = IdUserTower(num_users, dim, init_std)
        else:
            self.base = SequenceUserTower(train_sequences, dim, **dict(sequence or {}))
        self.reads_sequences = base == "sequence"

    def lookup(self, users: torch.Tensor) -> ItemLookup:
        inner = self.base.lookup(users)
        return ItemLookup(inner.items, (inner, users))

    def forward(self, users: torch.Tensor, lookup: ItemLookup, item_vectors: torch.Tensor) -> torch.Tensor:
        inner, _ = lookup.layout
        return self.base(users, inner, item_vectors) + self.text.vectors(users)

    def lookup_sequences(self, sequences: torch.Tensor, users: torch.Tensor | None = None) -> ItemLookup:
        if not self.reads_sequences or users is None:
            raise ConfigError("model.user_tower=hybrid reads sequences only with base=sequence")
        inner = self.base.lookup_sequences(sequences, users)
        return ItemLookup(inner.items, (inner, users))

    def encode(self, lookup: ItemLookup, item_vectors: torch.Tensor) -> torch.Tensor:
        inner, users = lookup.layout
        return self.base.encode(inner, item_vectors) + self.text.vectors(users).unsqueeze(1)

    def pool(self, states: torch.Tensor, lookup: ItemLookup) -> torch.Tensor:
        return self.base.pool(states, lookup.layout[0])
