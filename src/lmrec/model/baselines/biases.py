"""`model=biases`: the rating baseline r̂ = μ + b_u + b_i with ridge-regularised biases (Koren, KDD 2008), fitted
by alternating exact updates. Each update solves its block of the convex least-squares problem exactly, so the
iteration converges to the unique ridge solution. With the ID towers as matrix factorisation, this is the floor a
rating model must beat.
"""

from __future__ import annotations

import torch

from lmrec.config.arguments import BuildFacts, provides
from lmrec.errors import ConfigError
from lmrec.model.baselines.base import FittedBaseline


@provides("train_interactions")
def _train_interactions(facts: BuildFacts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(user index, item index, rating) of every training interaction."""
    return facts.datamodule.splits.tensors("train")


class RatingBiases(FittedBaseline):
    """Ratings, not logits: the rating task maps them onto its link (`RatingTask.logits_of`)."""

    predicts_ratings = True

    def __init__(
        self,
        train_interactions: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        num_users: int,
        num_items: int,
        user_l2: float = 5.0,
        item_l2: float = 5.0,
        iterations: int = 20,
    ) -> None:
        super().__init__()
        if not float(user_l2) >= 0 or not float(item_l2) >= 0 or int(iterations) < 1:
            raise ConfigError(
                f"model.baseline: user_l2={user_l2} and item_l2={item_l2} must be >= 0, iterations={iterations} >= 1"
            )
        self.train_interactions = train_interactions
        self.user_l2, self.item_l2, self.iterations = float(user_l2), float(item_l2), int(iterations)
        self.register_buffer("global_mean", torch.zeros(()))
        self.register_buffer("user_bias", torch.zeros(num_users))
        self.register_buffer("item_bias", torch.zeros(num_items))

    def fit(self) -> None:
        users, items, ratings = (t.cpu() for t in self.train_interactions)
        ratings = ratings.double()
        mean = ratings.mean()
        user_bias = torch.zeros(len(self.user_bias), dtype=torch.float64)
        item_bias = torch.zeros(len(self.item_bias), dtype=torch.float64)
        user_count = torch.bincount(users, minlength=len(user_bias)).double()
        item_count = torch.bincount(items, minlength=len(item_bias)).double()
        for _ in range(self.iterations):
            residual = ratings - mean - user_bias[users]
            item_bias = torch.zeros_like(item_bias).index_add_(0, items, residual) / (item_count + self.item_l2)
            residual = ratings - mean - item_bias[items]
            user_bias = torch.zeros_like(user_bias).index_add_(0, users, residual) / (user_count + self.user_l2)
        self.global_mean, self.user_bias, self.item_bias = mean.float(), user_bias.float(), item_bias.float()

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.global_mean + self.user_bias[users] + self.item_bias[items]

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.global_mean + self.user_bias[users].unsqueeze(1) + self.item_bias.unsqueeze(0)

    new_users = None
    uses_history = False

    def score_histories(self, histories: object) -> torch.Tensor:
        """A user without training ratings has no bias of their own: μ + b_i (their items are only masked)."""
        rows = histories.shape[0]  # type: ignore[attr-defined]
        return (self.global_mean + self.item_bias.unsqueeze(0)).expand(rows, -1).clone()
