"""The LightningModule: wires item tower, user tower, head and task, and owns the loop. Nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn


class RecommenderModule(pl.LightningModule):
    """Scores (user, item) pairs with towers + head; the task turns scores into a loss and metrics.

    Evaluation metrics live in torchmetrics objects so that multi-process runs sync exact sums, not means of means.
    """

    def __init__(
        self,
        item_tower: nn.Module,
        user_tower: nn.Module,
        head: nn.Module,
        task: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str | None = None,
    ) -> None:
        super().__init__()
        self.item_tower = item_tower
        self.user_tower = user_tower
        self.head = head
        self.task = task
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.monitor = monitor
        self.metrics = nn.ModuleDict({split: task.make_metrics() for split in ("val", "test")})
        self._frozen_item_vectors: torch.Tensor | None = None

    # -- scoring (what tasks call) ---------------------------------------------------------------------------
    def _item_vectors_for_users(self) -> torch.Tensor | None:
        if not getattr(self.user_tower, "needs_item_vectors", False):
            return None
        return self._frozen_item_vectors if self._frozen_item_vectors is not None else self.item_tower.all_items()

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits for aligned (user, item) pairs; what training losses and the rating metrics need."""
        u = self.user_tower(users, self._item_vectors_for_users())
        return self.head(u, self.item_tower(items), users, items)

    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        """Logits [users, all items] for full-ranking evaluation, from item vectors computed once per pass."""
        item_vectors = (
            self._frozen_item_vectors if self._frozen_item_vectors is not None else self.item_tower.all_items()
        )
        u = self.user_tower(users, item_vectors)
        return self.head.score_all(u, item_vectors, users)

    # -- training --------------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.task.training_loss(self, batch)
        # `train/loss` is the epoch mean (the name checkpoints and sweeps use); `train/loss_step` the per-step curve.
        size = len(batch["users"])
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, batch_size=size)
        return loss

    # -- evaluation: item vectors are computed once per pass, not once per batch --------------------------------
    def _start_eval(self) -> None:
        with torch.no_grad():
            self._frozen_item_vectors = self.item_tower.all_items().detach()

    def _end_eval(self, split: str) -> None:
        self._frozen_item_vectors = None
        results: dict[str, torch.Tensor] = {}
        for name, metric in self.metrics[split].items():
            value = metric.compute()
            results.update({k: v for k, v in value.items()} if isinstance(value, dict) else {name: value})
            metric.reset()
        self.log_dict({f"{split}/{k}": v for k, v in results.items()}, prog_bar=split == "val", sync_dist=False)

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.task.update_metrics(self.metrics["val"], self, batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.task.update_metrics(self.metrics["test"], self, batch)

    def on_validation_epoch_end(self) -> None:
        self._end_eval("val")

    def on_test_epoch_end(self) -> None:
        self._end_eval("test")

    # -- optimisation ----------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return optimizer
        # `monitor` lets metric-driven schedulers (ReduceLROnPlateau) watch the same metric as checkpointing.
        scheduler: dict[str, Any] = {"scheduler": self.scheduler_factory(optimizer=optimizer)}
        if self.monitor:
            scheduler["monitor"] = self.monitor
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def parameter_counts(self) -> dict[str, float]:
        """Total and trainable parameters: half of the "at what cost" question."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"total": total, "trainable": trainable, "trainable_pct": 100.0 * trainable / max(1, total)}
