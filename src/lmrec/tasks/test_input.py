"""What a model reads about a user when the test split is scored: their training items, or training and validation.

Under a leave-one-out or temporal split the validation item is the user's most recent one before the test item. A
sequence model reads it at test time (`next_item` gives it every item before the evaluated split); a model that
reads a user's items (the history tower, EASE, ItemKNN, ALS) must read it too, or the comparison handicaps it
exactly where it matters. `task.fold_validation` (on by default for temporal and leave-one-out splits, through the
`${lmrec.fold_validation:${data.split.strategy}}` resolver, so the run's resolved config records it) hands such a
model each test user's training and validation items and scores them with `score_histories`, the same path a new
user is served by: EASE and ItemKNN read X_u, ALS re-solves the user's factors, the history tower takes the mean.
Models with one learned vector per user (ID towers, MF) and those that do not read a history (popularity, rating
biases) score as before. Training is untouched: validation items are never trained on.
"""

from __future__ import annotations

from typing import Any

import torch

from lmrec.data.sparse import CSRMatrix

#: Split strategies whose validation interactions come before the test ones in each user's time line.
FOLDING_STRATEGIES = ("temporal", "temporal_loo", "random_loo", "source")


def fold_validation_default(strategy: str) -> bool:
    """`task.fold_validation`'s default for a split strategy (the `lmrec.fold_validation` resolver)."""
    return str(strategy) in FOLDING_STRATEGIES


class HistoryInputs:
    """Evaluation extra: each batch user's items in `matrix` (e.g. train + validation), flattened, with lengths."""

    def __init__(self, matrix: CSRMatrix) -> None:
        self.matrix = matrix

    def __call__(self, users: torch.Tensor) -> dict[str, Any]:
        batch_row, positions = self.matrix.row_positions(users)
        lengths = torch.bincount(batch_row, minlength=len(users))
        return {"history_items": self.matrix.col[positions], "history_lengths": lengths}


def reads_history(model: Any) -> bool:
    """Whether `model` scores a user from their items and can be given other items than its training history."""
    return bool(getattr(model, "reads_history", False))


def history_scores(model: Any, batch: dict[str, Any]) -> torch.Tensor | None:
    """The batch users' scores from the items the batch hands over, or None when it hands none or the model does
    not read items (it then scores as usual)."""
    if "history_items" not in batch or not reads_history(model):
        return None
    histories = list(torch.split(batch["history_items"], batch["history_lengths"].tolist()))
    return model.score_histories(histories, batch["users"])
