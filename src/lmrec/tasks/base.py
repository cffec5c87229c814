"""The task contract: a task decides the loss, the metrics, and the batches it trains and evaluates on.

A task is an `nn.Module` (it may hold state a loss needs) that builds its own datasets from the prepared
interactions (`InteractionSplits`), so the datamodule only serves what the task asks for. A new task is one class
plus one `task/<name>.yaml` (in lmrec's `conf/` or a config folder of the researcher's own); nothing else branches
on which task runs. The class declares everything about itself: its options (`config_options`, checked with the
rest of the config before anything runs), which of its metrics are better when smaller (`lower_is_better`, which
checkpointing, early stopping and Optuna follow), and the data-derived constructor arguments it needs (by parameter
name, `lmrec.config.arguments`). It scores through the model's public `Scorer` protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
import torchmetrics
from torch import nn
from torch.utils.data import Dataset

from lmrec.config.schema import Option
from lmrec.errors import ConfigError
from lmrec.tasks.per_user import ROWS, RowRecorder

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from lmrec.config.arguments import BuildFacts
    from lmrec.data.interactions import InteractionSplits
    from lmrec.tasks.rerank_candidates import RetrievedCandidates

#: (another run's folder, candidates per user, cache folder) -> what a task calls, once its data is read, for that
#: run's candidates. Loading a run imports the model code, so only the entry points that can (lmrec-train,
#: lmrec-eval) pass one; `lmrec.serving.candidates.candidate_loader` is lmrec's.
RetrieverLoader = Callable[[str, int, "str | None"], Callable[[], "RetrievedCandidates"]]


class Scorer(Protocol):
    """What a task needs from a model: pair scores, and scores against shared candidates or the whole catalogue."""

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor: ...
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor: ...
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits [users, items] of every user against one shared set of candidate items."""
        ...


def metric_family(name: str) -> str:
    """`val/ndcg@10` -> `ndcg`; `best/val/rmse` -> `rmse`."""
    return name.rsplit("/", 1)[-1].split("@", 1)[0].lower()


class Task(nn.Module):
    """Base class of tasks. Subclasses implement every method below (`check_components` is optional)."""

    #: The options of this task's config node (`task.*`), checked before anything is built (lmrec.config.validate).
    config_options: ClassVar[tuple[Option, ...]] = ()
    #: Metric families (a name's part before `@`) that are better when smaller; every other one is better larger.
    lower_is_better: ClassVar[frozenset[str]] = frozenset({"loss"})

    @classmethod
    def metric_mode(cls, name: str) -> str:
        """`min` or `max` for one of this task's metric names, as Lightning's callbacks spell it; what
        `${lmrec.metric_mode:${task._target_},${task.monitor}}` gives checkpointing, early stopping and Optuna."""
        return "min" if metric_family(str(name)) in cls.lower_is_better else "max"

    def check_components(self, components: Mapping[str, nn.Module] | None) -> None:
        """Refuse a model this task cannot train, before any heavy work. `components` are the towers and head by
        config group name (`user_tower`, ...), or None for a fitted baseline."""

    def attach_retriever(self, retriever: RetrieverLoader | None, cache_dir: str | None) -> None:
        """Give a task that reads another run's candidates (the rerank task) the means to load them; `retriever` is
        None where the entry point cannot load a run. A task that reads no other run ignores it."""

    def train_dataset(self, splits: InteractionSplits) -> Dataset:
        """The training rows (a map-style dataset whose `__getitems__` returns one batch dict)."""
        raise NotImplementedError

    def eval_dataset(self, splits: InteractionSplits, split: str) -> Dataset:
        """The rows that evaluate `split` ("val" or "test"); nothing from `split` or later may be a model input."""
        raise NotImplementedError

    def training_loss(self, model: Scorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def metric_names(self, split: str | None = None) -> list[str]:
        """Names of the metrics `make_metrics(split)` computes (without the split prefix), e.g. `ndcg@10`; with
        no split, the union over splits (a task may compute costly metrics on some splits only)."""
        raise NotImplementedError

    def make_metrics(self, split: str | None = None) -> torchmetrics.MetricCollection:
        raise NotImplementedError

    #: Whether evaluation keeps each evaluated row's values (the run's `per_user` option; `record_rows` sets it).
    keeps_rows: bool = False

    def record_rows(self, enabled: bool) -> None:
        """Keep (or not) each evaluated user's metric values beside the means (`lmrec.tasks.per_user`)."""
        self.keeps_rows = bool(enabled)

    def row_columns(self, split: str) -> tuple[list[str], list[str]] | None:
        """(key columns, value columns) of one row of `split`'s per-user output: e.g. (["user"], ["ndcg@10", ...]);
        None for a task that keeps no rows. Each value column's mean over its non-NaN rows is the split's metric
        of that name (a task whose metric is not such a mean documents how its columns give it)."""
        return None

    def evaluation_metrics(self, split: str) -> torchmetrics.MetricCollection:
        """`make_metrics(split)`, plus the row recorder when rows are kept: what a module evaluates `split` with."""
        metrics = self.make_metrics(split)
        columns = self.row_columns(split) if self.keeps_rows else None
        if columns is not None:
            metrics.add_metrics({ROWS: RowRecorder(*columns)})
        return metrics

    def per_user_rows(self, metrics: torchmetrics.MetricCollection) -> dict[str, Any] | None:
        """The rows of the pass that just ended (every rank's), before `compute_metrics` resets them; or None."""
        return metrics[ROWS].rows() if ROWS in metrics else None

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Scorer, batch: dict[str, torch.Tensor]
    ) -> None:
        raise NotImplementedError

    def eval_scores(self, model: Scorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores [users, catalogue] of the users of an evaluation batch, as this task evaluates them."""
        return model.score_all_items(batch["users"])

    def user_input_reader(self, splits: InteractionSplits, split: str) -> Callable[[torch.Tensor], dict[str, Any]]:
        """What `eval_scores` reads for given users when `split` is evaluated (a task whose users are sequences adds
        them): how a served recommendation for a known user gets the very scores the evaluation ranks. Build it once
        and call it per chunk of users: what every user's input derives from (their sequences) is built here."""
        return lambda users: {"users": users}

    def compute_metrics(self, metrics: torchmetrics.MetricCollection, split: str) -> dict[str, torch.Tensor]:
        """Every number of a finished pass, named `<split>/<name>` (a metric may return several), and the
        accumulators reset for the next pass. torchmetrics syncs the sums across DDP ranks, so these are exact."""
        results: dict[str, torch.Tensor] = {}
        for name, metric in metrics.items():
            if name == ROWS:  # rows, not a mean: taken by per_user_rows
                metric.reset()
                continue
            value = metric.compute()
            results.update(dict(value) if isinstance(value, dict) else {name: value})
            metric.reset()
        return {f"{split}/{key}": value for key, value in results.items()}


def build_task(task_cfg: DictConfig, facts: BuildFacts) -> Task:
    """The `task` section, given the data-derived arguments it names (`lmrec.config.arguments`: the source's
    `rating_scale`, ...), checked against its monitored metric so a typo fails before any data or model work."""
    from lmrec.config.instantiate import instantiate_with

    task = instantiate_with(task_cfg, facts.arguments(), key="task")
    if not isinstance(task, Task):
        raise ConfigError(f"task._target_={task_cfg._target_} builds a {type(task).__name__}, not an lmrec Task")
    monitor = str(task_cfg.monitor)
    valid = [f"val/{name}" for name in task.metric_names("val")]
    if monitor not in valid:
        raise ConfigError(
            f"task.monitor={monitor} is not a metric this task computes; choose one of {', '.join(valid)}"
        )
    return task
