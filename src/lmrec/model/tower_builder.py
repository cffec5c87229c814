"""Build the two-tower recommender the `model` section describes: item tower + user tower + head, with the task.

`conf/model/default.yaml` names this builder as the section's `_target_`; a fitted baseline's section names its own
(`lmrec.model.baselines.builder.FittedModelBuilder`). An entry point asks either the same questions (its trainer
options, what its frozen encoder costs, the module itself) and never which kind of model it runs. Each component
is built from its config node and given the data-derived constructor arguments it names
(`lmrec.config.arguments`): the data's sizes and history, `dim`, and the text vectors, which `model.tuning` makes a
frozen cached table or a trainable encoder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig
from torch import nn

from lmrec.config.arguments import BuildFacts, provides
from lmrec.config.instantiate import instantiate_with, target_parameters
from lmrec.config.schema import POSITIVE, Number, Option, nested
from lmrec.data.datamodule import RecDataModule
from lmrec.encoders.configured import build_tuning, frozen_text_embeddings, tuned_text_source
from lmrec.encoders.options import ENCODER_OPTIONS, check_encoder_config, encoder_width
from lmrec.encoders.resolve import count_parameters, encoder_files
from lmrec.encoders.text_sources import FrozenTextTable, frozen_vectors_in
from lmrec.encoders.tuning.base import TUNING_OPTIONS
from lmrec.errors import ConfigError
from lmrec.model.module import RecommenderModule
from lmrec.model.optimization import Optimization
from lmrec.tasks.base import Task

log = logging.getLogger(__name__)


@provides("dim")
def _dim(facts: BuildFacts) -> int:
    """`model.dim`: the width of user and item vectors."""
    return facts.dim


class TowerModelBuilder:
    """Towers + head + task -> `RecommenderModule`, from the `model` section (`model.item_tower`, `.user_tower`,
    `.head`, `.encoder`, `.tuning`, `.optimizer`, `.scheduler`, `.dim`)."""

    config_options: ClassVar[tuple[Option, ...]] = (
        Option("dim", (POSITIVE,), note="the width of user and item vectors"),
        Option("optimizer.lr", (Number(0.0, open_low=True),)),
        Option("optimizer.weight_decay", (Number(0.0),)),
        *nested("encoder", ENCODER_OPTIONS),
        *nested("tuning", TUNING_OPTIONS),
    )
    #: The component groups of `model`, in the order they are built (which fixes how they draw initial weights).
    COMPONENTS = ("head", "user_tower", "item_tower")

    def __init__(self, model: DictConfig) -> None:
        self.cfg = model
        self.tuning = build_tuning(model.get("tuning"))

    # -- what an entry point asks before the data is read ---------------------------------------------------------
    def trainer_options(self) -> dict[str, Any]:
        """Trainer options this kind of model needs beyond the `trainer` section: none, it trains in epochs."""
        return {}

    def reads_item_text(self) -> bool:
        """Whether the item tower reads item text: it names a `text_source` constructor argument."""
        return "text_source" in target_parameters(self.cfg.item_tower, "model.item_tower")

    def reads_user_text(self) -> bool:
        """Whether the user tower reads user text: it names a `user_text_source` constructor argument."""
        return "user_text_source" in target_parameters(self.cfg.user_tower, "model.user_tower")

    def frozen_encoder_parameters(self) -> int:
        """Parameters of a frozen item encoder: it lives outside the model (its vectors are cached) but is part of
        the cost."""
        if self.reads_item_text() and self.tuning.caches_embeddings:
            return count_parameters(encoder_files(self.cfg.encoder))
        return 0

    # -- the model ----------------------------------------------------------------------------------------------
    def build(
        self,
        datamodule: RecDataModule,
        task: Task,
        device: str = "cpu",
        monitor: str | None = None,
        checkpoint_state: Mapping[str, torch.Tensor] | None = None,
    ) -> RecommenderModule:
        """Towers + head + task. `checkpoint_state` (re-testing a saved run) supplies the frozen text vectors, so
        the encoder is not run (nor needed).

        Every component is first built once with one-row stand-ins for the text vectors, so a bad tower or head
        option fails in a second instead of after the encoding pass or loading the encoder.
        """
        cfg, tuning = self.cfg, self.tuning
        datamodule.prepare()
        dim = int(cfg.dim)
        text, user_text = self.reads_item_text(), self.reads_user_text()
        if not tuning.caches_embeddings and not (text or user_text):
            raise ConfigError(
                f"model/tuning={tuning.name} tunes the text encoder, but model/item_tower={cfg.item_tower.name} "
                f"uses no text (nor model/user_tower={cfg.user_tower.name}); pick a text or hybrid tower, or "
                "model/tuning=frozen"
            )
        saved = dict(checkpoint_state or {})
        item_vectors = frozen_vectors_in(saved, datamodule.num_items) if tuning.caches_embeddings else None
        user_vectors = frozen_vectors_in(saved, datamodule.num_users) if tuning.caches_embeddings else None
        width = self._text_width(item_vectors) if text else 0
        user_width = self._text_width(user_vectors) if user_text else 0
        user_texts = datamodule.user_texts() if user_text else []  # refused now, not after encoding the items

        facts = BuildFacts("model", datamodule=datamodule, source=datamodule.source, dim=dim)
        with torch.random.fork_rng():  # the dry run must not shift the real model's initialisation
            stand_ins = facts.with_facts(
                "model",
                text_source=lambda: FrozenTextTable(torch.zeros(1, width)),
                user_text_source=lambda: FrozenTextTable(torch.zeros(1, user_width)),
            )
            task.check_components(self._components(stand_ins))
            optimization = Optimization.from_config(cfg.optimizer, cfg.get("scheduler"), monitor, cfg.get("tuning"))

        def text_source() -> nn.Module:
            if not tuning.caches_embeddings:
                return tuned_text_source(
                    cfg.encoder, cfg.get("tuning") or {}, tuning, datamodule.item_texts, datamodule.cache_dir
                )
            if item_vectors is not None:
                return FrozenTextTable(item_vectors)
            embeddings, report = frozen_text_embeddings(
                cfg.encoder, datamodule.item_texts, datamodule.template_id, datamodule.cache_dir, device
            )
            return FrozenTextTable(embeddings, encoding=report)

        def user_text_source() -> nn.Module:
            if not tuning.caches_embeddings:
                return tuned_text_source(cfg.encoder, cfg.get("tuning") or {}, tuning, user_texts)
            if user_vectors is not None:
                return FrozenTextTable(user_vectors)
            embeddings, report = frozen_text_embeddings(
                cfg.encoder, user_texts, datamodule.user_template_id, datamodule.cache_dir, device
            )
            return FrozenTextTable(embeddings, encoding=report)

        components = self._components(
            facts.with_facts("model", text_source=text_source, user_text_source=user_text_source)
        )
        return RecommenderModule(task=task, optimization=optimization, **components)

    def _components(self, facts: BuildFacts) -> dict[str, nn.Module]:
        arguments = facts.arguments()
        return {name: instantiate_with(self.cfg[name], arguments, key=f"model.{name}") for name in self.COMPONENTS}

    def _text_width(self, saved: torch.Tensor | None) -> int:
        """Width of the text vectors: the saved table's, or read from the encoder's config.json (no model is
        loaded)."""
        if saved is not None:
            return int(saved.shape[1])
        check_encoder_config(self.cfg.encoder)
        return encoder_width(encoder_files(self.cfg.encoder))
