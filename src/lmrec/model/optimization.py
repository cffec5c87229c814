"""How a recommender is optimised: the optimizer and scheduler that `model.optimizer` / `model.scheduler` describe,
over the parameter groups the tuning mode asks for (`lmrec.encoders.tuning.base.encoder_parameter_groups`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from lmrec.config.instantiate import instantiate_checked
from lmrec.errors import ConfigError


@dataclass
class Optimization:
    """The optimizer and scheduler factories, the metric a plateau scheduler watches, and the encoder's own rate."""

    optimizer: Callable[..., torch.optim.Optimizer]
    scheduler: Callable[..., Any] | None = None
    monitor: str | None = None
    encoder_lr: float | None = None
    encoder_weight_decay: float | None = None

    @classmethod
    def from_config(
        cls,
        optimizer_cfg: DictConfig,
        scheduler_cfg: DictConfig | None,
        monitor: str | None,
        tuning_cfg: DictConfig | None = None,
    ) -> Optimization:
        """The factories of `model.optimizer` / `model.scheduler` (with `model.tuning`'s encoder rate), tried once on
        a stand-in parameter so bad settings (a negative learning rate, a missing argument) fail now rather than
        when `fit` starts."""
        optimizer = instantiate_checked(optimizer_cfg)
        scheduler = instantiate_checked(scheduler_cfg) if scheduler_cfg else None
        try:
            trial = optimizer(params=[nn.Parameter(torch.zeros(1))])
            if scheduler is not None:
                steps = {"num_training_steps": 10} if _counts_steps(scheduler) else {}
                scheduler(optimizer=trial, **steps)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"model.optimizer / model.scheduler: {err}") from None
        tuning = tuning_cfg or {}
        return cls(optimizer, scheduler, monitor, tuning.get("lr"), tuning.get("weight_decay"))

    def configure(self, parameter_groups: list[dict[str, Any]], total_steps: Callable[[], int]) -> Any:
        """What `LightningModule.configure_optimizers` returns; `total_steps` (the trainer's estimate) is asked only
        by a schedule defined over optimizer steps (warmup/decay)."""
        optimizer = self.optimizer(params=parameter_groups)
        if self.scheduler is None:
            return optimizer
        if _counts_steps(self.scheduler):
            scheduler: dict[str, Any] = {
                "scheduler": self.scheduler(optimizer=optimizer, num_training_steps=total_steps()),
                "interval": "step",
            }
        else:
            scheduler = {"scheduler": self.scheduler(optimizer=optimizer)}
        # `monitor` lets metric-driven schedulers (ReduceLROnPlateau) watch the same metric as checkpointing.
        if self.monitor:
            scheduler["monitor"] = self.monitor
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def _counts_steps(scheduler: Callable[..., Any]) -> bool:
    return "num_training_steps" in inspect.signature(scheduler).parameters
