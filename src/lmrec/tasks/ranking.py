"""`ranking`: implicit feedback. Every interaction is a positive. Training uses one of the objectives below;
evaluation ranks the whole catalogue for each user with seen items masked (NDCG/Recall/HR/MRR/Precision@K, AUC).

Objectives (`task.loss` × `task.negatives`):

* `bpr` / `bce` with `sampled` negatives: the pairwise losses against `num_negatives` sampled items per positive;
* `softmax` with `sampled` negatives: cross-entropy of the positive against its `num_negatives` negatives;
* `softmax` with `in_batch` negatives: each row's positive against the batch's other distinct positive items, which
  the step encodes anyway (a tuned text tower pays no extra encoding); the row's own item is never its negative;
* `softmax` with `full` negatives: cross-entropy over the whole catalogue (exact, costs one [B, N] score block).

`task.sampler` draws sampled negatives `uniform` over the items the user has no training interaction with, or by
`popularity` (training frequency ** `popularity_exponent`); `task.logq` subtracts log q(i) from the softmax logits
of popularity-sampled and in-batch candidates. Softmax logits are divided by `task.temperature` (learned with
`learn_temperature`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torchmetrics
from torch import nn
from torch.utils.data import Dataset

from lmrec.data.batches import NegativeSampledBatches, PopularityNegativeBatches, PositivePairs, RankingEvalBatches
from lmrec.data.interactions import InteractionSplits
from lmrec.errors import ConfigError
from lmrec.tasks.base import Scorer, Task
from lmrec.tasks.metrics import RankingMetricAccumulator, metric_names, normalize_ks
from lmrec.tasks.objectives import candidate_softmax_loss, pairwise_loss, sampled_softmax_loss

#: The splits whose items are masked (never recommended, never counted) when evaluating each split.
SEEN_BEFORE = {"val": ("train",), "test": ("train", "val")}
LOSSES = ("bpr", "bce", "softmax")
NEGATIVES = ("sampled", "in_batch", "full")
SAMPLERS = ("uniform", "popularity")


def _choice(key: str, value: str, options: Sequence[str]) -> str:
    if value not in options:
        raise ConfigError(f"task.{key}={value!r}; expected one of {', '.join(repr(o) for o in options)}")
    return value


class RankingTask(Task):
    """Implicit feedback: positives against negatives (sampled, in-batch or the catalogue); full-ranking evaluation."""

    def __init__(
        self,
        loss: str = "bpr",
        ks: Sequence[int] = (5, 10, 20),
        num_negatives: int = 4,
        negatives: str | None = None,
        sampler: str = "uniform",
        popularity_exponent: float = 0.75,
        logq: bool = True,
        temperature: float = 1.0,
        learn_temperature: bool = False,
    ) -> None:
        super().__init__()
        self.loss = _choice("loss", loss, LOSSES)
        if negatives is None:  # the objective's natural negatives: the batch's for softmax, sampled ones otherwise
            negatives = "in_batch" if self.loss == "softmax" else "sampled"
        self.negatives = _choice("negatives", negatives, NEGATIVES)
        self.sampler = _choice("sampler", sampler, SAMPLERS)
        if self.negatives != "sampled" and self.loss != "softmax":
            raise ConfigError(f"task.negatives={negatives} needs task.loss=softmax (bpr and bce take sampled ones)")
        if isinstance(num_negatives, bool) or int(num_negatives) < 1:
            raise ConfigError(f"task.num_negatives={num_negatives}; expected at least 1")
        if not float(temperature) > 0:
            raise ConfigError(f"task.temperature={temperature}; expected a positive number")
        if not float(popularity_exponent) >= 0:
            raise ConfigError(f"task.popularity_exponent={popularity_exponent}; expected 0 or more")
        self.ks = list(normalize_ks(ks))
        self.num_negatives = int(num_negatives)
        self.popularity_exponent = float(popularity_exponent)
        self.logq = bool(logq)
        log_temperature = torch.tensor(math.log(float(temperature)))
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_temperature)
        else:  # not a parameter (no optimizer state) and not saved: checkpoints stay those of a task without one
            self.register_buffer("log_temperature", log_temperature, persistent=False)
        self.register_buffer("log_q", torch.empty(0), persistent=False)

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp()

    def train_dataset(self, splits: InteractionSplits) -> Dataset:
        users, items, _ = splits.tensors("train")
        counts = torch.bincount(items, minlength=splits.num_items).double()
        if self.negatives == "sampled" and self.sampler == "popularity":
            weights = counts.pow(self.popularity_exponent) * (counts > 0)
            self.log_q = (weights / weights.sum()).log().float()
            return PopularityNegativeBatches(users, items, weights.float(), self.num_negatives)
        # In-batch candidates appear in a batch in proportion to how often they are a training positive.
        self.log_q = (counts / counts.sum()).log().float()
        if self.negatives == "sampled":
            return NegativeSampledBatches(users, items, splits.num_items, self.num_negatives)
        return PositivePairs(users, items)

    def eval_dataset(self, splits: InteractionSplits, split: str) -> Dataset:
        return RankingEvalBatches(splits.matrix(split), splits.matrix(*SEEN_BEFORE[split]))

    def _log_q(self, device: torch.device) -> torch.Tensor:
        if self.log_q.device != device:
            self.log_q = self.log_q.to(device)
        return self.log_q

    def training_loss(self, model: Scorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, items = batch["users"], batch["items"]
        if self.negatives == "full":
            return candidate_softmax_loss(model.score_all_items(users).float(), items, self.temperature)
        if self.negatives == "in_batch":
            candidates, target = torch.unique(items, return_inverse=True)
            log_q = self._log_q(items.device)[candidates] if self.logq else None
            logits = model.score_candidates(users, candidates).float()
            return candidate_softmax_loss(logits, target, self.temperature, log_q)
        negatives = batch["negatives"]
        # One call for positives and negatives, so an item that is both is encoded once per step.
        pair_users = torch.cat([users, users.unsqueeze(1).expand_as(negatives).reshape(-1)])
        scores = model.score_pairs(pair_users, torch.cat([items, negatives.reshape(-1)])).float()
        positive, negative = scores[: len(users)], scores[len(users) :].view_as(negatives)  # [B], [B, n]
        # Popularity draws may hit the row's own positive; uniform ones never do (they skip the user's items).
        valid = negatives != items.unsqueeze(1) if self.sampler == "popularity" else None
        if self.loss != "softmax":
            return pairwise_loss(self.loss, positive, negative, valid)
        corrected = self.logq and self.sampler == "popularity"  # uniform q is one constant per row: no effect
        log_q = self._log_q(items.device) if corrected else None
        return sampled_softmax_loss(
            positive,
            negative,
            self.temperature,
            log_q[items] if log_q is not None else None,
            log_q[negatives] if log_q is not None else None,
            valid,
        )

    def metric_names(self) -> list[str]:
        return metric_names(self.ks)

    def make_metrics(self) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection({"ranking": RankingMetricAccumulator(self.ks)})

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Scorer, batch: dict[str, torch.Tensor]
    ) -> None:
        scores = model.score_all_items(batch["users"])
        metrics["ranking"].update(scores, batch["targets"], batch["exclude"])
