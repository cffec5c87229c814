"""`rating`: explicit feedback. ŷ = r_min + (r_max − r_min)·σ(logit); the loss is MSE on ratings normalised to
[0, 1]; metrics are RMSE and MAE on the original scale and AUC with "rating ≥ threshold" as the positive class.
The rating range is the data source's (`Source.rating_scale`), passed in by the builder.
"""

from __future__ import annotations

import torch
import torchmetrics
from torch.nn import functional as F
from torch.utils.data import Dataset

from lmrec.config.schema import Number, Option
from lmrec.data.batches import InteractionBatches
from lmrec.data.interactions import InteractionSplits
from lmrec.data.sources.base import RatingScale
from lmrec.tasks.base import Scorer, Task
from lmrec.tasks.per_user import ROWS


class RatingTask(Task):
    """Explicit ratings: sigmoid of the logit mapped onto the data's rating scale."""

    config_options = (Option("positive_threshold", (Number(),), note="ratings at or above it are positives for AUC"),)
    lower_is_better = frozenset({"rmse", "mae", "mse", "loss"})

    def __init__(self, rating_scale: RatingScale, positive_threshold: float = 4.0) -> None:
        super().__init__()
        self.rating_min, self.rating_max = float(rating_scale.low), float(rating_scale.high)
        self.positive_threshold = positive_threshold

    def train_dataset(self, splits: InteractionSplits) -> Dataset:
        return InteractionBatches(*splits.tensors("train"))

    def eval_dataset(self, splits: InteractionSplits, split: str) -> Dataset:
        return InteractionBatches(*splits.tensors(split))

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return self.rating_min + (self.rating_max - self.rating_min) * torch.sigmoid(logits)

    def logits_of(self, ratings: torch.Tensor) -> torch.Tensor:
        """The logit whose prediction is `ratings` (clipped into the scale): how a model that predicts ratings
        directly (the bias baseline) is scored through the same link as every other model."""
        scaled = ((ratings - self.rating_min) / (self.rating_max - self.rating_min)).clamp(0.0, 1.0)
        return torch.logit(scaled.double(), eps=1e-9).float()

    def training_loss(self, model: Scorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model.score_pairs(batch["users"], batch["items"])
        target = (batch["ratings"] - self.rating_min) / (self.rating_max - self.rating_min)
        return F.mse_loss(torch.sigmoid(logits.float()), target.float())

    def metric_names(self, split: str | None = None) -> list[str]:
        return ["rmse", "mae", "auc"]  # the same for every split

    def make_metrics(self, split: str | None = None) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {
                "rmse": torchmetrics.MeanSquaredError(squared=False),
                "mae": torchmetrics.MeanAbsoluteError(),
                "auc": torchmetrics.classification.BinaryAUROC(),
            }
        )

    def row_columns(self, split: str) -> tuple[list[str], list[str]]:
        """One row per rated (user, item) pair, the unit the rating metrics average: `mae` (the pair's absolute
        error; its mean is MAE) and `squared_error` (RMSE is the square root of its mean). AUC ranks all pairs
        at once and has no per-pair value."""
        return ["user", "item"], ["mae", "squared_error"]

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Scorer, batch: dict[str, torch.Tensor]
    ) -> None:
        prediction = self.predict(model.score_pairs(batch["users"], batch["items"]).float())
        ratings = batch["ratings"].float()
        metrics["rmse"].update(prediction, ratings)
        metrics["mae"].update(prediction, ratings)
        metrics["auc"].update(prediction, (ratings >= self.positive_threshold).long())
        if ROWS in metrics:
            error = prediction.double() - ratings.double()
            metrics[ROWS].update(user=batch["users"], item=batch["items"], mae=error.abs(), squared_error=error**2)
