"""The task contract: a task decides the loss, the metrics, and the batches it trains and evaluates on.

A task is an `nn.Module` (it may hold state a loss needs) that builds its own datasets from the prepared
interactions (`InteractionSplits`), so the datamodule only serves what the task asks for. A new task is one class
in `lmrec/tasks/<task>.py` plus one `conf/task/<name>.yaml`; nothing else branches on which task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import torch
import torchmetrics
from torch import nn
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from lmrec.data.interactions import InteractionSplits


class Scorer(Protocol):
    """What a task needs from a model: pair scores, and scores against shared candidates or the whole catalogue."""

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor: ...
    def score_all_items(self, users: torch.Tensor) -> torch.Tensor: ...
    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits [users, items] of every user against one shared set of candidate items."""
        ...


class Task(nn.Module):
    """Base class of tasks. Subclasses implement every method below (`check_components` is optional)."""

    def check_components(self, components: Mapping[str, nn.Module] | None) -> None:
        """Refuse a model this task cannot train, before any heavy work. `components` are the towers and head by
        config group name (`user_tower`, ...), or None for a fitted baseline."""

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

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Scorer, batch: dict[str, torch.Tensor]
    ) -> None:
        raise NotImplementedError
