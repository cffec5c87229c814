"""Map-style datasets that fetch whole batches at once.

Tasks build their training and evaluation datasets from these (`lmrec.tasks`). Each defines `__getitems__`,
which torch's DataLoader calls with a batch of indices: one vectorised gather per batch instead of a Python call
and a collate per row, which dominates an epoch when the model is small.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from lmrec.data.eval_batch import users_per_eval_batch
from lmrec.data.sparse import CSRMatrix
from lmrec.errors import DataError


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
    """Positive (user, item) pairs, each with `num_negatives` items drawn uniformly from the items the user has
    NOT interacted with in training.

    Sampling is exact and vectorised, without rejection rounds (which stall for heavy users): with the user's
    positives sorted as p_0 < p_1 < ..., the r-th non-positive item is r + #{j : p_j - j <= r}, one searchsorted
    over all users' (p_j - j) concatenated with a per-user offset. Randomness comes from torch's global
    generator, which Lightning seeds from the run's seed.
    """

    def __init__(self, users: torch.Tensor, items: torch.Tensor, num_items: int, num_negatives: int) -> None:
        self.users, self.items = users, items
        self.num_items = num_items
        self.num_negatives = num_negatives
        positives = CSRMatrix.from_pairs(users, items, (int(users.max()) + 1 if len(users) else 0, num_items))
        lengths = positives.row_lengths()
        if len(lengths) and int(lengths.max()) >= num_items:
            user = int(torch.argmax(lengths))
            raise DataError(f"user index {user} interacted with every item; no negatives can be sampled")
        self.crow = positives.crow
        self.negative_count = num_items - lengths  # candidates per user
        rank_in_row = torch.arange(len(positives.col)) - torch.repeat_interleave(positives.crow[:-1], lengths)
        row = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        self.shifted = row * num_items + (positives.col - rank_in_row)  # globally sorted

    def __len__(self) -> int:
        return len(self.users)

    def sample(self, users: torch.Tensor) -> torch.Tensor:
        """[len(users), num_negatives] items, each uniform over the user's non-positive items."""
        draws = torch.rand(len(users), self.num_negatives)
        r = (draws * self.negative_count[users].unsqueeze(1)).long()
        keys = users.unsqueeze(1) * self.num_items + r
        skipped = torch.searchsorted(self.shifted, keys, right=True) - self.crow[users].unsqueeze(1)
        return r + skipped

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        users = self.users[idx]
        return {"users": users, "items": self.items[idx], "negatives": self.sample(users)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])


class PositivePairs(Dataset):
    """Positive (user, item) pairs only: for objectives whose negatives come from elsewhere (the other rows of the
    batch, or the whole catalogue)."""

    def __init__(self, users: torch.Tensor, items: torch.Tensor) -> None:
        self.users, self.items = users, items

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"users": self.users[idx], "items": self.items[idx]}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])


class PopularityNegativeBatches(PositivePairs):
    """Positive pairs, each with `num_negatives` items drawn from a fixed distribution `probabilities` over the
    catalogue (e.g. training frequency to some power). Draws are not conditioned on the user, so one may be the
    row's own positive (an "accidental hit"); the objective masks those. `torch.multinomial` does the drawing:
    it samples with replacement from an arbitrary distribution in one vectorised call."""

    def __init__(
        self, users: torch.Tensor, items: torch.Tensor, probabilities: torch.Tensor, num_negatives: int
    ) -> None:
        super().__init__(users, items)
        self.probabilities = probabilities
        self.num_negatives = num_negatives

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        batch = super().__getitems__(indices)
        draws = torch.multinomial(self.probabilities, len(indices) * self.num_negatives, replacement=True)
        return {**batch, "negatives": draws.view(len(indices), self.num_negatives)}


class RankingEvalBatches(Dataset):
    """Users with held-out items in a split, each with dense target and exclusion rows over the catalogue.

    ``split`` (if given) is passed along in every batch, so that a task can evaluate splits differently; each of
    ``extras`` is a callable ``users -> dict`` whose entries join the batch (a task's per-user evaluation data,
    e.g. sampled negatives or activity buckets). Extras must be picklable objects (not lambdas) for workers."""

    def __init__(
        self,
        targets: CSRMatrix,
        exclude: CSRMatrix,
        split: str | None = None,
        extras: Sequence[Callable[[torch.Tensor], dict[str, Any]]] = (),
    ) -> None:
        self.targets, self.exclude, self.split, self.extras = targets, exclude, split, list(extras)
        self.users = torch.nonzero(targets.row_lengths() > 0).squeeze(1)

    def __len__(self) -> int:
        return len(self.users)

    def rows_within(self, memory_mb: float, num_workers: int = 0) -> int:
        """The most users per batch whose [users, items] scores and dense rows fit `memory_mb`
        (`data.eval_batch_size=auto`)."""
        return users_per_eval_batch(self.targets.shape[1], memory_mb, num_workers)

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        users = self.users[torch.as_tensor(indices, dtype=torch.long)]
        batch: dict[str, Any] = {
            "users": users,
            "targets": self.targets.dense_rows(users),
            "exclude": self.exclude.dense_rows(users),
        }
        if self.split is not None:
            batch["split"] = self.split
        for extra in self.extras:
            batch.update(extra(users))
        return batch

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])
