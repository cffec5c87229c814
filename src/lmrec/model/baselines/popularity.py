"""`model=pop`: every user gets the items most often interacted with in training (the floor any model must beat)."""

from __future__ import annotations

import torch

from lmrec.data.sparse import CSRMatrix
from lmrec.model.baselines.base import FittedBaseline


class MostPopular(FittedBaseline):
    """Score = number of training users of the item (ties among equal counts are left to the evaluator's top-k)."""

    def __init__(self, history: CSRMatrix) -> None:
        super().__init__()
        self.history = history
        self.register_buffer("counts", torch.zeros(history.shape[1]))

    def fit(self) -> None:
        self.counts = torch.bincount(self.history.col, minlength=self.history.shape[1]).float()

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.counts.to(users.device).expand(len(users), -1).clone()

    new_users = None
    uses_history = False

    def score_histories(self, histories: CSRMatrix) -> torch.Tensor:
        """Popularity is everyone's score; a history only decides what is masked as seen."""
        return self.counts.expand(histories.shape[0], -1).clone()
