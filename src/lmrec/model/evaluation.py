"""The evaluation every lmrec LightningModule shares: the task's metrics per split, updated from the module's scores,
logged at the end of each pass with each evaluated user's values kept for `per_user/<split>.parquet`.

The two-tower module, the fitted baselines' module and the reranker all evaluate this way, so a task's metrics,
its per-user rows and what the entry points read back (`module.per_user`) cannot differ between kinds of model;
each module adds only what its own pass needs (`start_evaluation`, `end_evaluation`, `evaluation_extras`).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from lmrec.tasks.base import Task

SPLITS = ("val", "test")


class TaskEvaluation(pl.LightningModule):
    """Validation and test through the task (`Task.update_metrics`, `compute_metrics`, `per_user_rows`)."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task = task
        self.metrics = nn.ModuleDict({split: task.evaluation_metrics(split) for split in SPLITS})
        #: Each evaluated row's values of the last pass of each split, when the task keeps them (`per_user`).
        self.per_user: dict[str, dict[str, Any] | None] = {}
        #: The training step of the weights each split's rows are of (not after Lightning's partial sanity pass),
        #: so lmrec-train re-validates the tested checkpoint only when the fit's last pass was not of its weights.
        self.evaluated_at: dict[str, int] = {}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.evaluate_batch("val", batch, batch_idx)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.evaluate_batch("test", batch, batch_idx)

    def evaluate_batch(self, split: str, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.task.update_metrics(self.metrics[split], self, batch)

    def on_validation_epoch_start(self) -> None:
        self.start_evaluation()

    def on_test_epoch_start(self) -> None:
        self.start_evaluation()

    def on_validation_epoch_end(self) -> None:
        self.finish_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self.finish_evaluation("test")

    def start_evaluation(self) -> None:
        """Before a pass (e.g. every item's vector, computed once for it)."""

    def end_evaluation(self) -> None:
        """After a pass, before its metrics are logged (e.g. back to training state)."""

    def evaluation_extras(self, split: str) -> dict[str, torch.Tensor]:
        """Further values to log beside the task's metrics (e.g. what the pass cost)."""
        return {}

    def finish_evaluation(self, split: str) -> None:
        self.end_evaluation()
        self.per_user[split] = self.task.per_user_rows(self.metrics[split])
        if getattr(self._trainer, "sanity_checking", False):
            self.evaluated_at.pop(split, None)
        else:
            self.evaluated_at[split] = int(self.global_step)
        results = self.task.compute_metrics(self.metrics[split], split)
        results.update(self.evaluation_extras(split))
        self.log_dict(results, prog_bar=split == "val", sync_dist=False)
