"""The contract every model builder keeps, and the builder a `model` section names as its `_target_`.

The two-tower recommender (`lmrec.model.tower_builder.TowerModelBuilder`) and the fitted baselines
(`lmrec.model.baselines.builder.FittedModelBuilder`) answer the same questions, so an entry point builds either
without asking which it has. A new kind of model is one builder class plus the yaml that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from lmrec.config.allowlist import check_target
from lmrec.data.datamodule import RecDataModule
from lmrec.errors import ConfigError
from lmrec.tasks.base import Task


class ModelBuilder(Protocol):
    """Built from the `model` section alone (no data read), then asked for the LightningModule once data is there."""

    def trainer_options(self) -> dict[str, Any]:
        """Trainer options this kind of model needs beyond the `trainer` section (a fitted model: one pass)."""
        ...

    def frozen_encoder_parameters(self) -> int:
        """Parameters of a frozen encoder the model reads cached vectors of (0 if none): part of its cost."""
        ...

    def build(
        self,
        datamodule: RecDataModule,
        task: Task,
        device: str = "cpu",
        monitor: str | None = None,
        checkpoint_state: Mapping[str, torch.Tensor] | None = None,
    ) -> pl.LightningModule: ...


def model_builder(model_cfg: DictConfig) -> ModelBuilder:
    """The builder the section names (`model._target_`, through the allow-list), given the section."""
    target = model_cfg.get("_target_")
    if target is None:
        raise ConfigError(
            "model._target_ is missing: a model section names its builder, e.g. "
            "lmrec.model.tower_builder.TowerModelBuilder (towers and a head) or "
            "lmrec.model.baselines.builder.FittedModelBuilder (a fitted baseline)"
        )
    return check_target(target, "model")(model_cfg)
