"""The pieces `lmrec-train` and `lmrec-eval` both build from a config, in the order that fails fastest."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger

from lmrec.config.instantiate import instantiate_checked
from lmrec.config.validate import check_config
from lmrec.data.build import build_datamodule, build_source
from lmrec.data.datamodule import RecDataModule
from lmrec.tasks.base import Task
from lmrec.tasks.build import build_task, task_inputs

log = logging.getLogger(__name__)


def seed_run(cfg: DictConfig) -> None:
    """One seed drives splits, initialisation, sampling and shuffling; optionally deterministic kernels.

    The config's types and ranges are checked first: the entry points seed before they build anything, and a seed
    of the wrong type would otherwise stop in numpy with a traceback."""
    check_config(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere+ for the fp32 parts of the model


def build_data(cfg: DictConfig) -> tuple[Task, RecDataModule]:
    """Source, task and datamodule, every option checked and no file read yet.

    `check_config` runs first (again after `seed_run`, which costs microseconds), so every entry point that builds
    data (`lmrec-train`, `lmrec-eval`, `lmrec-data`) refuses a value of the wrong type before loggers, the trainer,
    the data or the encoder do any work."""
    check_config(cfg)
    source = build_source(cfg)
    task = build_task(cfg, task_inputs(source))
    return task, build_datamodule(cfg, source, task)


def choose_precision(trainer_cfg: DictConfig) -> str:
    """The configured precision, with bf16 falling back to fp16 autocast on GPUs that lack bf16 (pre-Ampere)."""
    precision = str(trainer_cfg.get("precision", "32-true"))
    on_gpu = trainer_cfg.get("accelerator") in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    if precision.startswith("bf16") and on_gpu and not torch.cuda.is_bf16_supported():
        log.warning("this GPU has no bf16; training with precision=16-mixed instead of %s", precision)
        return "16-mixed"
    return precision


def build_trainer(trainer_cfg: DictConfig, loggers: list[Logger], callbacks: list[Any], **options: Any) -> pl.Trainer:
    return instantiate_checked(
        trainer_cfg, logger=loggers or False, callbacks=callbacks, precision=choose_precision(trainer_cfg), **options
    )
