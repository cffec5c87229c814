"""`ranking`: implicit feedback. Every interaction is a positive; negatives are sampled uniformly from the items
the user has no training interaction with; the loss is BCE or BPR; evaluation ranks the whole catalogue for each
user with seen items masked (NDCG/Recall/HR/MRR/Precision@K and AUC).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchmetrics
from torch.nn import functional as F
from torch.utils.data import Dataset

from lmrec.data.batches import NegativeSampledBatches, RankingEvalBatches
from lmrec.data.interactions import InteractionSplits
from lmrec.errors import ConfigError
from lmrec.tasks.base import Scorer, Task
from lmrec.tasks.metrics import RankingMetricAccumulator, metric_names, normalize_ks

#: The splits whose items are masked (never recommended, never counted) when evaluating each split.
SEEN_BEFORE = {"val": ("train",), "test": ("train", "val")}


class RankingTask(Task):
    """Implicit feedback: positives against sampled negatives; evaluated by full ranking."""

    def __init__(self, loss: str = "bpr", ks: Sequence[int] = (5, 10, 20), num_negatives: int = 4) -> None:
        super().__init__()
        if loss not in ("bce", "bpr"):
            raise ConfigError(f"task.loss={loss!r}; expected 'bce' or 'bpr'")
        if isinstance(num_negatives, bool) or int(num_negatives) < 1:
            raise ConfigError(f"task.num_negatives={num_negatives}; expected at least 1")
        self.loss = loss
        self.ks = list(normalize_ks(ks))
        self.num_negatives = int(num_negatives)

    def train_dataset(self, splits: InteractionSplits) -> Dataset:
        users, items, _ = splits.tensors("train")
        return NegativeSampledBatches(users, items, splits.num_items, self.num_negatives)

    def eval_dataset(self, splits: InteractionSplits, split: str) -> Dataset:
        return RankingEvalBatches(splits.matrix(split), splits.matrix(*SEEN_BEFORE[split]))

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
