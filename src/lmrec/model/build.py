"""Build the model a config describes: towers + head + task, each fed the data-derived arguments it names."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from lmrec.config.instantiate import instantiate_checked, instantiate_with, target_parameters
from lmrec.data.datamodule import RecDataModule
from lmrec.encoders.build import build_tuning, encoder_options, frozen_text_embeddings, tuned_text_source
from lmrec.encoders.options import check_encoder_config, encoder_width
from lmrec.encoders.resolve import encoder_files
from lmrec.encoders.text_sources import FrozenTextTable
from lmrec.errors import ConfigError
from lmrec.model.baselines.base import FittedBaseline
from lmrec.model.baselines.module import BaselineModule
from lmrec.model.inputs import BuildContext
from lmrec.model.module import RecommenderModule
from lmrec.tasks.base import Task

log = logging.getLogger(__name__)

#: The component groups of `model`, in the order they are built (which fixes how they draw initial weights).
COMPONENTS = ("head", "user_tower", "item_tower")


def is_baseline(cfg: DictConfig) -> bool:
    """Whether `model` is a fitted baseline (`model=ease`, ...: a `baseline:` node) rather than towers and a head."""
    return cfg.model.get("baseline") is not None


def baseline_trainer_options(cfg: DictConfig) -> dict[str, Any]:
    """A fitted baseline needs no epochs: one epoch of one (empty) step, then validation, so Lightning's loop still
    writes the validation metric and the checkpoint the run folder records."""
    if not is_baseline(cfg):
        return {}
    return {"max_epochs": 1, "min_epochs": 1, "limit_train_batches": 1, "num_sanity_val_steps": 0, "max_time": None}


def uses_text(cfg: DictConfig) -> bool:
    """Whether the configured item tower (or fitted model, e.g. `model=ease_text`) reads item text: it names a
    `text_source` constructor argument."""
    reader = cfg.model.baseline if is_baseline(cfg) else cfg.model.item_tower
    return "text_source" in target_parameters(reader)


def uses_user_text(cfg: DictConfig) -> bool:
    """Whether the configured user tower reads user text (it names a `user_text_source` constructor argument)."""
    return not is_baseline(cfg) and "user_text_source" in target_parameters(cfg.model.user_tower)


def build_baseline(
    cfg: DictConfig, datamodule: RecDataModule, task: Task, text_embeddings: torch.Tensor | None = None
) -> BaselineModule:
    """A fitted model; one that names `text_source` gets the frozen encoder's cached item vectors."""

    def text_source() -> nn.Module:
        if not uses_text(cfg):
            raise ConfigError("a fitted baseline reads no item text")
        if not build_tuning(cfg.model).caches_embeddings:
            raise ConfigError(f"model={cfg.model.get('name')} is fitted in closed form; it needs model/tuning=frozen")
        return frozen_item_table(cfg, datamodule, text_embeddings)

    context = BuildContext(datamodule, int(cfg.model.get("dim") or 0), text_source)
    baseline = instantiate_with(cfg.model.baseline, context.available(), key="model.baseline")
    if not isinstance(baseline, FittedBaseline):
        raise ConfigError(f"model.baseline._target_={cfg.model.baseline._target_} is not an lmrec FittedBaseline")
    return BaselineModule(baseline, task, name=str(cfg.model.get("name", "baseline")))


def frozen_item_table(
    cfg: DictConfig, datamodule: RecDataModule, text_embeddings: torch.Tensor | None = None
) -> FrozenTextTable:
    """The frozen encoder's item vectors (from the cache, or encoded now), or `text_embeddings` when given."""
    if text_embeddings is not None:
        return FrozenTextTable(text_embeddings)
    embeddings, report = frozen_text_embeddings(
        cfg.model.encoder, datamodule.item_texts, datamodule.template_id, datamodule.cache_dir, device_of(cfg)
    )
    return FrozenTextTable(embeddings, encoding=report)


def device_of(cfg: DictConfig) -> str:
    return "cuda" if cfg.trainer.get("accelerator") == "gpu" and torch.cuda.is_available() else "cpu"


def text_width(cfg: DictConfig, text_embeddings: torch.Tensor | None) -> int:
    """Width of the item text vectors, read from the encoder's config.json (no model is loaded)."""
    encoder_options(cfg.model.encoder)  # its batch size is checked before any encoder work
    if text_embeddings is not None:
        return int(text_embeddings.shape[1])
    check_encoder_config(cfg.model.encoder)
    return encoder_width(encoder_files(cfg.model.encoder))


def build_components(cfg: DictConfig, context: BuildContext) -> dict[str, nn.Module]:
    available = context.available()
    return {name: instantiate_with(cfg.model[name], available, key=f"model.{name}") for name in COMPONENTS}


def build_model(
    cfg: DictConfig,
    datamodule: RecDataModule,
    task: Task,
    text_embeddings: torch.Tensor | None = None,
) -> RecommenderModule | BaselineModule:
    """Towers + head + task for `cfg`. `text_embeddings` (e.g. from a checkpoint) skips the frozen encoder.

    Every component is first built once with a one-row stand-in for the text vectors, so a bad tower or head
    option fails in a second instead of after the encoding pass or loading the encoder.
    """
    datamodule.prepare()
    if is_baseline(cfg):
        task.check_components(None)
        return build_baseline(cfg, datamodule, task, text_embeddings)
    dim = int(cfg.model.dim)
    if dim < 1:
        raise ConfigError(f"model.dim={dim}; expected a positive width")
    tuning = build_tuning(cfg.model)
    text, user_text = uses_text(cfg), uses_user_text(cfg)
    if not tuning.caches_embeddings and not (text or user_text):
        raise ConfigError(
            f"model/tuning={tuning.name} tunes the text encoder, but model/item_tower={cfg.model.item_tower.name} "
            f"uses no text (nor model/user_tower={cfg.model.user_tower.name}); pick a text or hybrid tower, or "
            "model/tuning=frozen"
        )
    width = text_width(cfg, text_embeddings) if text else 0
    user_width = text_width(cfg, None) if user_text else 0
    user_texts = datamodule.user_texts() if user_text else []  # refused now, not after encoding the items

    with torch.random.fork_rng():  # the dry run must not shift the real model's initialisation
        stand_ins = BuildContext(
            datamodule,
            dim,
            lambda: FrozenTextTable(torch.zeros(1, width)),
            lambda: FrozenTextTable(torch.zeros(1, user_width)),
        )
        task.check_components(build_components(cfg, stand_ins))
        optimizer, scheduler = build_optimizer(cfg)

    def text_source() -> nn.Module:
        if not tuning.caches_embeddings:
            return tuned_text_source(
                cfg.model.encoder, cfg.model.tuning, tuning, datamodule.item_texts, datamodule.cache_dir
            )
        return frozen_item_table(cfg, datamodule, text_embeddings)

    def user_text_source() -> nn.Module:
        if not tuning.caches_embeddings:
            return tuned_text_source(cfg.model.encoder, cfg.model.tuning, tuning, user_texts)
        embeddings, report = frozen_text_embeddings(
            cfg.model.encoder, user_texts, datamodule.user_template_id, datamodule.cache_dir, device_of(cfg)
        )
        return FrozenTextTable(embeddings, encoding=report)

    tuning_options = cfg.model.get("tuning") or {}
    return RecommenderModule(
        task=task,
        optimizer=optimizer,
        scheduler=scheduler,
        monitor=str(cfg.task.monitor),
        encoder_lr=tuning_options.get("lr"),
        encoder_weight_decay=tuning_options.get("weight_decay"),
        **build_components(cfg, BuildContext(datamodule, dim, text_source, user_text_source)),
    )


def build_optimizer(cfg: DictConfig) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """The optimizer and scheduler factories, tried once on a stand-in parameter so bad settings (a negative
    learning rate, a missing argument) fail now rather than when `fit` starts."""
    optimizer = instantiate_checked(cfg.model.optimizer)
    scheduler = instantiate_checked(cfg.model.scheduler) if cfg.model.get("scheduler") else None
    try:
        trial = optimizer(params=[nn.Parameter(torch.zeros(1))])
        if scheduler is not None:
            steps = (
                {"num_training_steps": 10} if "num_training_steps" in inspect.signature(scheduler).parameters else {}
            )
            scheduler(optimizer=trial, **steps)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"model.optimizer / model.scheduler: {err}") from None
    return optimizer, scheduler
