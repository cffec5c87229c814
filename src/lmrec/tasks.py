"""Tasks decide the loss and the metrics; the model only supplies scores.

`rating`: explicit feedback. ŷ = r_min + (r_max − r_min)·σ(logit); the loss is MSE on ratings normalised to
[0, 1]; metrics are RMSE and MAE on the original scale and AUC with "rating ≥ threshold" as the positive class.

`ranking`: implicit feedback. Every interaction is a positive; negatives are sampled; the loss is BCE or BPR;
evaluation ranks the whole catalogue for each user with seen items masked (NDCG/Recall/HR/MRR@K and AUC).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
import torchmetrics
from torch import nn
from torch.nn import functional as F

from lmrec.errors import ConfigError
from lmrec.metrics import RankingMetricAccumulator, metric_names


class Scorer(Protocol):
    """What a task needs from a model: pair scores and scores against the whole catalogue."""

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor: ...
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor: ...


class RatingTask(nn.Module):
    """Explicit ratings: sigmoid of the logit mapped onto [rating_min, rating_max]."""

    def __init__(self, rating_min: float = 0.5, rating_max: float = 5.0, positive_threshold: float = 4.0) -> None:
        super().__init__()
        if not rating_min < rating_max:
            raise ConfigError(f"task.rating_min={rating_min} must be below task.rating_max={rating_max}")
        self.rating_min, self.rating_max = rating_min, rating_max
        self.positive_threshold = positive_threshold

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return self.rating_min + (self.rating_max - self.rating_min) * torch.sigmoid(logits)

    def training_loss(self, model: Scorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = model.score_pairs(batch["users"], batch["items"])
        target = (batch["ratings"] - self.rating_min) / (self.rating_max - self.rating_min)
        return F.mse_loss(torch.sigmoid(logits.float()), target.float())

    def metric_names(self) -> list[str]:
        return ["rmse", "mae", "auc"]

    def make_metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection(
            {
                "rmse": torchmetrics.MeanSquaredError(squared=False),
                "mae": torchmetrics.MeanAbsoluteError(),
                "auc": torchmetrics.classification.BinaryAUROC(),
            }
        )

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Scorer, batch: dict[str, torch.Tensor]
    ) -> None:
        prediction = self.predict(model.score_pairs(batch["users"], batch["items"]).float())
        ratings = batch["ratings"].float()
        metrics["rmse"].update(prediction, ratings)
        metrics["mae"].update(prediction, ratings)
        metrics["auc"].update(prediction, (ratings >= self.positive_threshold).long())


class RankingTask(nn.Module):
    """Implicit feedback: positives against sampled negatives; evaluated by full ranking."""

    def __init__(self, loss: str = "bpr", ks: Sequence[int] = (5, 10, 20)) -> None:
        super().__init__()
        if loss not in ("bce", "bpr"):
            raise ConfigError(f"task.loss={loss!r}; expected 'bce' or 'bpr'")
        if isinstance(ks, int) or not ks or any(int(k) < 1 for k in ks):
            raise ConfigError(f"task.ks={list(ks)}; expected a non-empty list of positive cut-offs")
        self.loss = loss
        self.ks = sorted({int(k) for k in ks})

    def training_loss(self, model: Scorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, negatives = batch["users"], batch["negatives"]
        # One call for positives and negatives, so an item that is both is encoded once per step.
        pair_users = torch.cat([users, users.unsqueeze(1).expand_as(negatives).reshape(-1)])
        scores = model.score_pairs(pair_users, torch.cat([batch["items"], negatives.reshape(-1)])).float()
        positive, negative = scores[: len(users)], scores[len(users) :].view_as(negatives)  # [B], [B, n]
        if self.loss == "bpr":
            return -F.logsigmoid(positive.unsqueeze(1) - negative).mean()
        return F.binary_cross_entropy_with_logits(
            positive, torch.ones_like(positive)
        ) + F.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative))

    def metric_names(self) -> list[str]:
        return metric_names(self.ks)

    def make_metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection({"ranking": RankingMetricAccumulator(self.ks)})

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Scorer, batch: dict[str, torch.Tensor]
    ) -> None:
        scores = model.score_all_items(batch["users"])
        metrics["ranking"].update(scores, batch["targets"], batch["exclude"])
