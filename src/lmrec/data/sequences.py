"""Each user's interactions in time order: what sequential user towers read and next-item training predicts.

Order is (timestamp, then row order of the processed table), the order the leave-one-out splits use to pick the
held-out items, so the validation item of a temporal leave-one-out split is always the last item of the
train + validation sequence. Sequences are served left-padded with -1 (`PAD`): the most recent item sits at the
last position, as in SASRec, so a causal Transformer's last output is the user vector whatever the length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

#: The index of "no item" in a padded sequence.
PAD = -1


class UserSequences(NamedTuple):
    """Row-offset layout (like `CSRMatrix`) whose entries within a row are chronological, not sorted by item."""

    crow: torch.Tensor  # [num_users + 1]
    items: torch.Tensor  # [nnz], each user's items oldest first
    num_items: int

    @classmethod
    def from_arrays(
        cls, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray, num_users: int, num_items: int
    ) -> UserSequences:
        """Rows given in table order; a stable sort by (user, timestamp) keeps the table order among equal times."""
        order = np.lexsort((np.arange(len(users)), np.asarray(timestamps), np.asarray(users)))
        counts = np.bincount(np.asarray(users, dtype=np.int64), minlength=num_users)
        crow = torch.zeros(num_users + 1, dtype=torch.long)
        crow[1:] = torch.from_numpy(np.cumsum(counts))
        return cls(crow, torch.from_numpy(np.asarray(items, dtype=np.int64)[order]), int(num_items))

    @property
    def num_users(self) -> int:
        return len(self.crow) - 1

    def lengths(self) -> torch.Tensor:
        return self.crow.diff()

    def window(self, users: torch.Tensor, ends: torch.Tensor, length: int) -> torch.Tensor:
        """[len(users), length]: the `length` items of each user's sequence before position `ends` (exclusive),
        left-padded with PAD where the sequence is shorter."""
        starts = self.crow[users]
        positions = (starts + ends).unsqueeze(1) - length + torch.arange(length)
        valid = positions >= starts.unsqueeze(1)
        if len(self.items) == 0:
            return torch.full(positions.shape, PAD, dtype=torch.long)
        gathered = self.items[positions.clamp(min=0, max=len(self.items) - 1)]
        return torch.where(valid, gathered, torch.full_like(gathered, PAD))

    def last(self, users: torch.Tensor, length: int) -> torch.Tensor:
        """[len(users), length]: each user's `length` most recent items, left-padded with PAD."""
        return self.window(users, self.lengths()[users], length)


def sequences_of(splits, names: Sequence[str]) -> UserSequences:
    """Every user's items in the named splits (e.g. train and val: the input a test prediction may read)."""
    parts = [splits.tensors(name) for name in names]
    times = [splits.timestamps(name) for name in names]
    order = [splits.rows(name) for name in names]
    users = torch.cat([p[0] for p in parts]).numpy()
    items = torch.cat([p[1] for p in parts]).numpy()
    timestamps = torch.cat(times).numpy()
    rows = torch.cat(order).numpy()
    # Table order across splits too: rows are re-sorted by their position in the processed table first.
    by_row = np.argsort(rows, kind="stable")
    return UserSequences.from_arrays(
        users[by_row], items[by_row], timestamps[by_row], splits.num_users, splits.num_items
    )


def training_windows(lengths: torch.Tensor, max_length: int, every_window: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(user, end) of each training row: windows of `max_length` + 1 items cut back from the end of each sequence.

    Each window predicts its items 2..max_length+1 from those before them within it, so with `every_window` every
    item after a user's first is a target exactly once (a long history is not cut to its last `max_length`
    items); without it only the most recent window trains (the original SASRec). Users with fewer than two items
    have nothing to predict and give no row.
    """
    users, ends = [], []
    remaining = lengths.clone()
    while True:
        active = remaining >= 2
        if not bool(active.any()):
            break
        users.append(torch.nonzero(active).squeeze(1))
        ends.append(remaining[active])
        if not every_window:
            break
        remaining = torch.where(active, remaining - max_length, remaining.new_zeros(()))
    if not users:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    return torch.cat(users), torch.cat(ends)
