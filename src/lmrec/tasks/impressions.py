"""`impressions`: the MIND impression task. Trains as the ranking task does (every click a positive, the same
objectives); evaluates each validation or test impression on its own: the model scores the impression's candidates,
and the leaderboard's metrics (mean over impressions of AUC, MRR, nDCG@5, nDCG@10, `lmrec.tasks.mind_metrics`)
compare those scores with the clicks.

The impressions come from the source (`impressions(split)`, offered to the task as the data-derived argument
`impressions` by `lmrec.data.impressions`) and are mapped onto the run's user and item indices. A user who has no
training click (MIND's dev set has many) is still scored, from whatever the user tower makes of an untrained user;
an impression whose user or candidate the run's tables do not hold (e.g. cut by `data.max_users`) is left out and
counted. The impression's own click history is kept with it (`Impressions.history`) for a history tower that reads
it; today's history towers read the training clicks instead.

Because validation and test impressions must not be training interactions, the task requires
`data.split.strategy=source`, the split the source ships.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torchmetrics
from torch.utils.data import Dataset

from lmrec.config.schema import OneOf, Option
from lmrec.data.impressions import SINGLE_CLASS, ImpressionLog, index_impressions
from lmrec.data.interactions import InteractionSplits
from lmrec.errors import ConfigError, DataError
from lmrec.tasks.base import Scorer
from lmrec.tasks.mind_metrics import (
    ImpressionMetricAccumulator,
    check_ties,
    impression_metric_names,
    impression_metrics,
)
from lmrec.tasks.per_user import ROWS
from lmrec.tasks.ranking import RankingTask

log = logging.getLogger(__name__)

#: Largest [users, candidates] score block one scoring call may produce (elements).
SCORE_BLOCK = 1 << 22
#: Options of the ranking task's catalogue evaluation, refused here rather than silently ignored.
FULL_RANKING_ONLY = ("sampled_eval", "buckets")
#: Mixed into the seed so validation and test draw different tie-break keys.
SPLIT_SEEDS = {"val": 1, "test": 2}


def run_ids(splits: InteractionSplits) -> tuple[Any, Any]:
    """The dataset ids of the run's user and item indices, which the impressions are mapped onto."""
    user_ids, item_ids = getattr(splits, "user_ids", None), getattr(splits, "item_ids", None)
    if user_ids is None or item_ids is None:
        raise DataError(
            "the impression task needs the run's user and item ids (InteractionSplits.user_ids / item_ids), "
            "which this version of lmrec.data.interactions does not provide"
        )
    return user_ids, item_ids


def score_impressions(model: Scorer, users: torch.Tensor, items: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """The score of every candidate (`items`, with `segments` naming its impression and `users` each impression's
    user): each distinct user scored once against the batch's distinct candidates, in blocks of at most
    SCORE_BLOCK scores, instead of one pair per candidate (which a history tower or a fitted baseline would pay
    for per candidate)."""
    candidates, column = torch.unique(items, return_inverse=True)
    distinct, user_row = torch.unique(users, return_inverse=True)
    row = user_row[segments]
    scores = torch.empty(len(items), dtype=torch.float32, device=items.device)
    step = max(1, SCORE_BLOCK // max(1, len(candidates)))
    for start in range(0, len(distinct), step):
        block = model.score_candidates(distinct[start : start + step], candidates).float()
        inside = (row >= start) & (row < start + step)
        scores[inside] = block[row[inside] - start, column[inside]]
    return scores


class ImpressionTask(RankingTask):
    """Ranking-task training; evaluation on the source's impressions with the MIND leaderboard metrics."""

    config_options = (*RankingTask.config_options, Option("single_class", (OneOf(SINGLE_CLASS),)))

    def __init__(
        self,
        impressions: ImpressionLog,
        split_strategy: str = "source",
        ks: Sequence[int] = (5, 10),
        ties: str = "random",
        single_class: str = "error",
        seed: int = 0,
        drop_invalid: bool = False,
        **ranking: Any,
    ) -> None:
        for key in FULL_RANKING_ONLY:  # evaluation options of task=ranking that this evaluation does not compute
            if ranking.pop(key, None):
                raise ConfigError(f"task.{key} is a full-ranking evaluation option; task=impressions does not use it")
        ranking.pop("auc", None)  # the impression AUC is always computed
        super().__init__(**ranking)
        if split_strategy != "source":
            raise ConfigError(
                f"task=impressions needs data.split.strategy=source (the split the source ships), got "
                f"{split_strategy!r}: under another split, validation and test clicks would be training interactions"
            )
        if not isinstance(impressions, ImpressionLog):
            raise ConfigError(
                f"task=impressions needs a source with impressions (e.g. data=mind_small), got {impressions!r}"
            )
        self.impressions = impressions
        self.impression_ks = tuple(sorted({int(k) for k in ks}))
        self.ties, self.single_class, self.seed = check_ties(ties), single_class, int(seed)
        self.drop_invalid = bool(drop_invalid)

    def eval_dataset(self, splits: InteractionSplits, split: str) -> Dataset:
        user_ids, item_ids = run_ids(splits)
        dataset = index_impressions(
            self.impressions.impressions(split, drop_invalid=self.drop_invalid),
            user_ids,
            item_ids,
            seed=(self.seed, SPLIT_SEEDS[split]),
            single_class=self.single_class,
        )
        cold = int((splits.matrix("train").row_lengths()[dataset.users] == 0).sum())
        log.info(
            "%s: %d impressions, %d of them of users without a training click (scored as untrained users)",
            split,
            len(dataset),
            cold,
        )
        return dataset

    def metric_names(self, split: str | None = None) -> list[str]:
        return impression_metric_names(self.impression_ks)

    def make_metrics(self, split: str | None = None) -> torchmetrics.MetricCollection:
        return torchmetrics.MetricCollection({"impression": ImpressionMetricAccumulator(self.impression_ks, self.ties)})

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Scorer, batch: dict[str, torch.Tensor]
    ) -> None:
        scores = score_impressions(model, batch["users"], batch["items"], batch["segments"])
        if len(batch["segments"]) == 0:
            return
        accumulator = metrics["impression"]
        values = impression_metrics(
            scores.float(), batch["labels"], batch["segments"], batch["tiebreak"], accumulator.ties, accumulator.ks
        )
        accumulator.update(values=values)
        if ROWS in metrics:
            metrics[ROWS].update(impression=batch["impressions"], user=batch["users"], **values)

    def row_columns(self, split: str) -> tuple[list[str], list[str]]:
        """One row per evaluated impression (its file id and user): the leaderboard's per-impression values."""
        return ["impression", "user"], self.metric_names(split)
