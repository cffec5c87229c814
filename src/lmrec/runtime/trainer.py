"""Lightning's Trainer as lmrec builds it: the options it accepts, the precision a GPU can run, one-line errors.

Lightning checks few Trainer options at construction, and a value of the wrong type fails only once `fit` starts
(after the catalogue was encoded), so lmrec declares the options it passes on (`TRAINER_OPTIONS`, checked with every
other option before a run builds anything, `lmrec.config.validate`).
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger

from lmrec.config.instantiate import instantiate_checked
from lmrec.config.schema import BOOL, COUNT, POSITIVE, AnyMapping, ListOf, Matches, Number, OneOf, Option, Whole

log = logging.getLogger(__name__)


def _precisions() -> tuple[Any, ...]:
    """The precision values Lightning accepts, from its own type declaration when it still has one."""
    from typing import get_args

    try:
        from lightning_fabric.connector import _PRECISION_INPUT

        values = tuple(v for literal in get_args(_PRECISION_INPUT) for v in get_args(literal))
    except (ImportError, AttributeError):  # a Lightning release that moved it: the 2.x list
        values = ()
    return values or (64, 32, 16, "64", "32", "16", "bf16", "16-true", "16-mixed", "bf16-true", "bf16-mixed",
                      "32-true", "64-true", "transformer-engine", "transformer-engine-float16")  # fmt: skip


BATCHES = (Whole(0), Number(0.0, 1.0))  # Lightning's limit_*_batches: a number of batches or a fraction
DEVICES = (
    Whole(1),
    OneOf((-1, "auto", "-1")),
    ListOf(Whole(0)),
    Matches(r"\d+(,\d+)*,?", "a string of comma-separated device indices"),
)
MAX_TIME = Matches(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", 'a duration "DD:HH:MM:SS"')

#: The Trainer options lmrec's configs set or users commonly override (keys under `trainer`).
TRAINER_OPTIONS: tuple[Option, ...] = (
    Option("max_epochs", (Whole(1), OneOf((-1,))), nullable=True,
           note="-1: no limit; 0 would train nothing, train=false tests the initial weights"),
    Option("min_epochs", (COUNT,), nullable=True),
    Option("max_steps", (Whole(-1),), note="-1: no limit"),
    Option("min_steps", (COUNT,), nullable=True),
    Option("max_time", (MAX_TIME, AnyMapping("a mapping such as {hours: 1}")), nullable=True),
    Option("val_check_interval", (POSITIVE, Number(0.0, 1.0, open_low=True)), nullable=True,
           note="batches, or a fraction of an epoch"),
    Option("check_val_every_n_epoch", (POSITIVE,), nullable=True),
    Option("accumulate_grad_batches", (POSITIVE,)),
    Option("gradient_clip_val", (Number(0.0),), nullable=True, note="null: no clipping"),
    Option("gradient_clip_algorithm", (OneOf(("norm", "value")),), nullable=True),
    Option("devices", DEVICES),
    Option("num_nodes", (POSITIVE,)),
    Option("precision", (OneOf(_precisions()),)),
    Option("limit_train_batches", BATCHES, nullable=True, note="a number of batches, or a fraction"),
    Option("limit_val_batches", BATCHES, nullable=True, note="a number of batches, or a fraction"),
    Option("limit_test_batches", BATCHES, nullable=True, note="a number of batches, or a fraction"),
    Option("limit_predict_batches", BATCHES, nullable=True, note="a number of batches, or a fraction"),
    Option("log_every_n_steps", (COUNT,), nullable=True),
    Option("num_sanity_val_steps", (Whole(-1),), nullable=True, note="-1: every validation batch"),
    Option("deterministic", (BOOL, OneOf(("warn",))), nullable=True),
    Option("enable_model_summary", (BOOL,), nullable=True),
    Option("enable_progress_bar", (BOOL,), nullable=True),
    Option("enable_checkpointing", (BOOL,), nullable=True),
    Option("sync_batchnorm", (BOOL,)),
)  # fmt: skip


def choose_precision(trainer_cfg: DictConfig) -> str:
    """The configured precision, with bf16 falling back to fp16 autocast on GPUs that lack bf16 (pre-Ampere)."""
    precision = str(trainer_cfg.get("precision", "32-true"))
    on_gpu = trainer_cfg.get("accelerator") in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    if precision.startswith("bf16") and on_gpu and not torch.cuda.is_bf16_supported():
        log.warning("this GPU has no bf16; training with precision=16-mixed instead of %s", precision)
        return "16-mixed"
    return precision


def build_trainer(trainer_cfg: DictConfig, loggers: list[Logger], callbacks: list[Any], **options: Any) -> pl.Trainer:
    """The Trainer of `trainer_cfg`, with the run's loggers and callbacks; `options` override the config (a fitted
    model's single pass, an evaluation without checkpoints).

    A time limit is a limit: with `trainer.max_time` set, `min_epochs` does not keep the run going past it (Lightning
    would train on, logging that it was asked to stop, once per step, until min_epochs were done)."""
    if trainer_cfg.get("max_time") and trainer_cfg.get("min_epochs") and "min_epochs" not in options:
        log.info("trainer.max_time=%s: the run stops when time is up, min_epochs or not", trainer_cfg.max_time)
        options["min_epochs"] = None
    return instantiate_checked(
        trainer_cfg, logger=loggers or False, callbacks=callbacks, precision=choose_precision(trainer_cfg), **options
    )
