"""Map-style datasets that fetch whole batches at once.

Each defines `__getitems__`, which torch's DataLoader calls with a batch of indices: one vectorised gather per
batch instead of a Python call and a collate per row, which dominates an epoch when the model is small.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from lmrec.sparse import CSRMatrix


def identity_collate(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


class InteractionBatches(Dataset):
    """(user, item, rating) rows, for the rating task."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        self.users, self.items, self.ratings = users, items, ratings

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"users": self.users[idx], "items": self.items[idx], "ratings": self.ratings[idx]}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])


class NegativeSampledBatches(Dataset):
    """Positive (user, item) pairs, each with `num_negatives` items drawn uniformly from the catalogue.

    Draws that hit one of the user's training positives are redrawn (a few rounds, vectorised), so BCE/BPR are
    not taught to push down items the user actually chose. Randomness comes from torch's global generator, which
    Lightning seeds from the run's seed.
    """

    def __init__(
        self, users: torch.Tensor, items: torch.Tensor, num_items: int, num_negatives: int, redraw_rounds: int = 3
    ) -> None:
        if num_negatives < 1:
            raise ValueError(f"task.num_negatives={num_negatives}; expected at least 1")
        self.users, self.items = users, items
        self.num_items = num_items
        self.num_negatives = num_negatives
        self.redraw_rounds = redraw_rounds
        self.positive_keys = torch.unique(users * num_items + items)  # sorted

    def __len__(self) -> int:
        return len(self.users)

    def _is_positive(self, users: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        keys = users.unsqueeze(1) * self.num_items + candidates
        pos = torch.searchsorted(self.positive_keys, keys).clamp_max(len(self.positive_keys) - 1)
        return self.positive_keys[pos] == keys

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        users = self.users[idx]
        negatives = torch.randint(0, self.num_items, (len(idx), self.num_negatives))
        for _ in range(self.redraw_rounds):
            clash = self._is_positive(users, negatives)
            if not clash.any():
                break
            negatives[clash] = torch.randint(0, self.num_items, (int(clash.sum()),))
        return {"users": users, "items": self.items[idx], "negatives": negatives}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])


class RankingEvalBatches(Dataset):
    """Users with held-out items in a split, each with dense target and exclusion rows over the catalogue."""

    def __init__(self, targets: CSRMatrix, exclude: CSRMatrix) -> None:
        self.targets, self.exclude = targets, exclude
        self.users = torch.nonzero(targets.row_lengths() > 0).squeeze(1)

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        users = self.users[torch.as_tensor(indices, dtype=torch.long)]
        return {"users": users, "targets": self.targets.dense_rows(users), "exclude": self.exclude.dense_rows(users)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])
