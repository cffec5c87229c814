"""Build the fitted baseline a `model` section describes (`model=ease`, `pop`, `itemknn`, `als`, `biases`,
`ease_text`): the `baseline` node, given the data-derived constructor arguments it names, in a `BaselineModule`.

Its model yaml names this builder as the section's `_target_`; it answers the same questions as the two-tower
builder (`lmrec.model.tower_builder`), so entry points never ask which kind of model they run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig
from torch import nn

from lmrec.config.arguments import BuildFacts
from lmrec.config.instantiate import instantiate_with, target_parameters
from lmrec.config.schema import Option, nested
from lmrec.data.datamodule import RecDataModule
from lmrec.encoders.configured import build_tuning, frozen_text_embeddings
from lmrec.encoders.options import ENCODER_OPTIONS
from lmrec.encoders.resolve import count_parameters, encoder_files
from lmrec.encoders.text_sources import FrozenTextTable, frozen_vectors_in
from lmrec.errors import ConfigError
from lmrec.model.baselines.base import FittedBaseline
from lmrec.model.baselines.module import BaselineModule
from lmrec.tasks.base import Task


class FittedModelBuilder:
    """A `FittedBaseline` from `model.baseline` (and `model.encoder` for one that reads item text)."""

    config_options: ClassVar[tuple[Option, ...]] = nested("encoder", ENCODER_OPTIONS)

    def __init__(self, model: DictConfig) -> None:
        self.cfg = model
        self.name = str(model.get("name", "baseline"))

    def trainer_options(self) -> dict[str, Any]:
        """Fitted without epochs: one epoch of one (empty) step, then validation, so Lightning's loop still writes
        the validation metric and the checkpoint the run folder records."""
        return {"max_epochs": 1, "min_epochs": 1, "limit_train_batches": 1, "num_sanity_val_steps": 0, "max_time": None}

    def reads_item_text(self) -> bool:
        """Whether the baseline reads item text (`model=ease_text`): it names a `text_source` constructor argument."""
        return "text_source" in target_parameters(self.cfg.baseline, "model.baseline")

    def frozen_encoder_parameters(self) -> int:
        """Parameters of the frozen encoder whose cached item vectors the fit reads: part of its cost."""
        if self.reads_item_text() and build_tuning(self.cfg.get("tuning")).caches_embeddings:
            return count_parameters(encoder_files(self.cfg.encoder))
        return 0

    def build(
        self,
        datamodule: RecDataModule,
        task: Task,
        device: str = "cpu",
        monitor: str | None = None,
        checkpoint_state: Mapping[str, torch.Tensor] | None = None,
    ) -> BaselineModule:
        """The fitted model (fitted when training starts); one that reads text gets the frozen encoder's cached item
        vectors, or those `checkpoint_state` holds when a saved run is re-tested."""
        datamodule.prepare()
        task.check_components(None)

        def text_source() -> nn.Module:
            if not build_tuning(self.cfg.get("tuning")).caches_embeddings:
                raise ConfigError(f"model={self.name} is fitted in closed form; it needs model/tuning=frozen")
            saved = frozen_vectors_in(dict(checkpoint_state or {}), datamodule.num_items)
            if saved is not None:
                return FrozenTextTable(saved)
            embeddings, report = frozen_text_embeddings(
                self.cfg.encoder, datamodule.item_texts, datamodule.template_id, datamodule.cache_dir, device
            )
            return FrozenTextTable(embeddings, encoding=report)

        facts = BuildFacts("model", datamodule=datamodule, source=datamodule.source, text_source=text_source)
        baseline = instantiate_with(self.cfg.baseline, facts.arguments(), key="model.baseline")
        if not isinstance(baseline, FittedBaseline):
            raise ConfigError(f"model.baseline._target_={self.cfg.baseline._target_} is not an lmrec FittedBaseline")
        return BaselineModule(baseline, task, name=self.name, num_items=datamodule.num_items)
