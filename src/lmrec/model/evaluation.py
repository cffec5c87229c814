"""What every lmrec LightningModule shares: the task's metrics, evaluated the same way for every model.

A neural recommender (`RecommenderModule`) and a fitted baseline (`BaselineModule`) both subclass this, so a
baseline's numbers come from exactly the evaluator, metric objects and log names a neural model's do.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn

from lmrec.tasks.base import Task


class EvaluatedModule(pl.LightningModule):
    """Validation and test through `task.update_metrics`; metrics live in torchmetrics objects so multi-process
    runs sync exact sums, not means of means. Subclasses score (the `Scorer` protocol) and may prepare per pass."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task
        self.metrics = nn.ModuleDict({split: task.make_metrics(split) for split in ("val", "test")})

    def start_evaluation(self) -> None:
        """Called once before each validation or test pass (e.g. to compute every item's vector once)."""

    def end_evaluation(self) -> None:
        """Called once after each pass, before the metrics are logged."""

    def _end_eval(self, split: str) -> None:
        self.end_evaluation()
        results: dict[str, torch.Tensor] = {}
        for name, metric in self.metrics[split].items():
            value = metric.compute()
            results.update({k: v for k, v in value.items()} if isinstance(value, dict) else {name: value})
            metric.reset()
        self.log_dict({f"{split}/{k}": v for k, v in results.items()}, prog_bar=split == "val", sync_dist=False)

    def on_validation_epoch_start(self) -> None:
        self.start_evaluation()

    def on_test_epoch_start(self) -> None:
        self.start_evaluation()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.task.update_metrics(self.metrics["val"], self, batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.task.update_metrics(self.metrics["test"], self, batch)

    def on_validation_epoch_end(self) -> None:
        self._end_eval("val")

    def on_test_epoch_end(self) -> None:
        self._end_eval("test")
