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

Evaluation options: `task.ties` (top-K tie policy, `lmrec.tasks.ties`), `task.sampled_eval` (sampled ranking next
to full ranking, `lmrec.tasks.sampled`), `task.buckets` (metrics by user activity and item popularity,
`lmrec.tasks.buckets`) and `task.auc` (the splits that compute the costly exact AUC). All use one seed
(`task.seed`, the run's seed by default) and one accumulator per split, so every number is exact under DDP.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torchmetrics
from torch import nn
from torch.utils.data import Dataset

from lmrec.config.schema import POSITIVE, ListOf, Number, OneOf, Option, Whole, check_values
from lmrec.data.batches import NegativeSampledBatches, PopularityNegativeBatches, PositivePairs, RankingEvalBatches
from lmrec.data.interactions import SPLITS, InteractionSplits
from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError
from lmrec.tasks.base import Scorer, Task
from lmrec.tasks.buckets import BucketValues, parse_buckets, user_bucket_values
from lmrec.tasks.metrics import RankingMetricAccumulator, metric_names, normalize_ks, ranking_metrics
from lmrec.tasks.objectives import candidate_softmax_loss, pairwise_loss, sampled_softmax_loss
from lmrec.tasks.per_user import ROWS
from lmrec.tasks.sampled import SampledNegatives, parse_sampled_eval, sampled_metrics
from lmrec.tasks.test_input import HistoryInputs, history_scores
from lmrec.tasks.ties import check_tie_policy

#: The splits whose items are masked (never recommended, never counted) when evaluating each split.
SEEN_BEFORE = {"val": ("train",), "test": ("train", "val")}
LOSSES = ("bpr", "bce", "softmax")
NEGATIVES = ("sampled", "in_batch", "full")
SAMPLERS = ("uniform", "popularity")
#: numpy's seed range, which `pytorch_lightning.seed_everything` enforces.
SEED_MAX = 2**32 - 1


class RankingTask(Task):
    """Implicit feedback: positives against negatives (sampled, in-batch or the catalogue); full-ranking evaluation."""

    config_options = (
        Option("loss", (OneOf(LOSSES),)),
        Option("negatives", (OneOf(NEGATIVES),), nullable=True, note="null: in_batch for softmax, else sampled"),
        Option("sampler", (OneOf(SAMPLERS),)),
        Option("ks", (ListOf(POSITIVE),), note="top-K cut-offs"),
        Option("num_negatives", (POSITIVE,)),
        Option("temperature", (Number(0.0, open_low=True),)),
        Option("popularity_exponent", (Number(0.0),)),
        Option("seed", (Whole(0, SEED_MAX),)),
    )

    def __init__(
        self,
        loss: str = "softmax",
        ks: Sequence[int] = (5, 10, 20),
        num_negatives: int = 4,
        negatives: str | None = None,
        sampler: str = "uniform",
        popularity_exponent: float = 0.75,
        logq: bool = True,
        temperature: float = 2.0,
        learn_temperature: bool = False,
        ties: str = "random",
        seed: int = 0,
        sampled_eval: Sequence[dict] | None = None,
        buckets: dict | None = None,
        auc: Sequence[str] = ("val", "test"),
        mask_history: bool = True,
        fold_validation: bool = False,
    ) -> None:
        super().__init__()
        options = {"loss": loss, "negatives": negatives, "sampler": sampler, "ks": ks, "num_negatives": num_negatives,
                   "temperature": temperature, "popularity_exponent": popularity_exponent, "seed": seed}  # fmt: skip
        check_values(RankingTask.config_options, options, "task")  # built from Python: the same declaration
        self.loss = loss
        if negatives is None:  # the objective's natural negatives: the batch's for softmax, sampled ones otherwise
            negatives = "in_batch" if self.loss == "softmax" else "sampled"
        self.negatives, self.sampler = negatives, sampler
        if self.negatives != "sampled" and self.loss != "softmax":
            raise ConfigError(f"task.negatives={negatives} needs task.loss=softmax (bpr and bce take sampled ones)")
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
        self.ties, self.seed = check_tie_policy(ties), int(seed)
        self.sampled = parse_sampled_eval(sampled_eval)
        self.buckets = parse_buckets(buckets)
        if isinstance(auc, str) or not isinstance(auc, Sequence) or not set(auc) <= {"val", "test"}:
            raise ConfigError(f"task.auc={auc!r}; expected a list of splits from [val, test], e.g. [test] or []")
        self.auc_splits = tuple(s for s in ("val", "test") if s in auc)
        for name, value in (("mask_history", mask_history), ("fold_validation", fold_validation)):
            if not isinstance(value, bool):
                raise ConfigError(f"task.{name}={value!r}; expected true or false")
        self.mask_history, self.fold_validation = mask_history, fold_validation

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
        targets, seen = splits.matrix(split), splits.matrix(*SEEN_BEFORE[split])
        exclude = seen if self.mask_history else CSRMatrix.empty(seen.shape)
        extras = [*self.eval_extras(splits, split, targets, exclude), *self.input_extras(splits, split)]
        return RankingEvalBatches(targets, exclude, split=split, extras=extras)

    def input_extras(self, splits: InteractionSplits, split: str) -> list:
        """What a history-reading model is handed for `split` beyond its training items (`lmrec.tasks.test_input`):
        the training and validation items at test time when `fold_validation` is on."""
        return [HistoryInputs(splits.matrix(*SEEN_BEFORE[split]))] if self.fold_validation and split == "test" else []

    def eval_scores(self, model: Scorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        folded = history_scores(model, batch)
        return folded if folded is not None else model.score_all_items(batch["users"])

    def user_input_reader(self, splits: InteractionSplits, split: str) -> Callable[[torch.Tensor], dict[str, Any]]:
        extras = self.input_extras(splits, split)

        def read(users: torch.Tensor) -> dict[str, Any]:
            inputs: dict[str, Any] = {"users": users}
            for extra in extras:
                inputs.update(extra(users))
            return inputs

        return read

    def eval_extras(self, splits: InteractionSplits, split: str, targets: CSRMatrix, seen: CSRMatrix) -> list:
        """Per-user evaluation data beside targets and mask: sampled negatives, activity buckets."""
        extras: list = []
        train_users, train_items, _ = splits.tensors("train")
        item_counts = torch.bincount(train_items, minlength=splits.num_items)
        if self.sampled:
            positives = splits.matrix(*SPLITS)  # negatives are never a positive of the user in any split
            target_keys = _pair_keys(targets.crow, targets.col, splits.num_items)
            kept = ~torch.isin(target_keys, _pair_keys(seen.crow, seen.col, splits.num_items))
            slots = torch.zeros(splits.num_users, dtype=torch.int64).index_add_(
                0, target_keys // splits.num_items, kept.to(torch.int64)
            )
            for i, (label, n, sampler) in enumerate(self.sampled):
                weights = item_counts if sampler == "popularity" else torch.ones_like(item_counts)
                seed = self.seed * 1_000_003 + 7919 * (i + 1) + (0 if split == "val" else 104_729)
                extras.append(SampledNegatives(label, n, weights, positives, slots, seed))
        if self.buckets is not None:
            user_counts = torch.bincount(train_users, minlength=splits.num_users)
            extras.append(BucketValues(self.buckets, user_counts, item_counts))
        return extras

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
        return self.sampled_loss(positive, negative, items, negatives)

    def sampled_loss(
        self, positive: torch.Tensor, negative: torch.Tensor, items: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """The configured loss of positive scores [M] against sampled negatives' scores [M, n] (items [M] and
        negatives [M, n] name them): pairwise, or sampled softmax with logQ for popularity draws."""
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

    def metric_names(self, split: str | None = None) -> list[str]:
        """The names a split logs (without the `val/` prefix); with no split, those of any split (the union)."""
        auc = bool(self.auc_splits) if split is None else split in self.auc_splits
        full = metric_names(self.ks, auc=auc)
        topk = metric_names(self.ks, auc=False)
        names = list(full)
        if self.buckets is not None:
            names += [f"{g}/{n}" for g in self.buckets.item_buckets() for n in topk]
            names += [f"{b}/{n}" for b in self.buckets.user_buckets() for n in full]
        names += [f"{label}/{n}" for label, _, _ in self.sampled for n in topk]
        return names

    def make_metrics(self, split: str | None = None) -> torchmetrics.MetricCollection:
        """One accumulator for every number of a split. Without `split` it holds every split's names, and a split
        whose batches skip AUC (`task.auc`) leaves `auc` out of its results."""
        names = self.metric_names(split)
        extra = names[len(metric_names(self.ks, auc="auc" in names)) :]
        accumulator = RankingMetricAccumulator(self.ks, auc="auc" in names, ties=self.ties, extra_names=extra)
        return torchmetrics.MetricCollection({"ranking": accumulator})

    def row_columns(self, split: str) -> tuple[list[str], list[str]]:
        """One row per evaluated user: every number the split logs (full ranking, sampled, item buckets, and a
        user bucket's columns NaN outside it), so each column's mean over its non-NaN rows is the logged metric."""
        return ["user"], self.metric_names(split)

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Scorer, batch: dict[str, torch.Tensor]
    ) -> None:
        users, targets, exclude = batch["users"], batch["targets"], batch["exclude"]
        scores = self.eval_scores(model, batch)
        split = batch.get("split")
        values: dict[str, torch.Tensor] = {}
        for label, _, _ in self.sampled:  # before the full ranking, which may use the scores as scratch space
            rows, items = batch[f"{label}/rows"], batch[f"{label}/items"]
            options = {"ties": self.ties, "seed": self.seed, "users": users, "label": label}
            values.update(sampled_metrics(scores, targets, exclude, rows, items, tuple(self.ks), **options))
        full = ranking_metrics(
            scores,
            targets,
            exclude,
            self.ks,
            auc=split is None or split in self.auc_splits,
            ties=self.ties,
            seed=self.seed,
            users=users,
            item_groups=batch.get("item_groups"),
        )
        values.update(full)
        if "user_bucket" in batch and self.buckets is not None:
            own = {k: v for k, v in full.items() if "/" not in k}
            values.update(user_bucket_values(own, batch["user_bucket"], self.buckets.user_buckets()))
        metrics["ranking"].update(values=values)
        if ROWS in metrics:
            metrics[ROWS].update(user=users, **values)


def _pair_keys(crow: torch.Tensor, col: torch.Tensor, num_items: int) -> torch.Tensor:
    """user * num_items + item of every stored entry of a CSR matrix (sorted)."""
    return torch.repeat_interleave(torch.arange(len(crow) - 1), crow.diff()) * num_items + col
