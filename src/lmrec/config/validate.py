"""Config values checked against their types and ranges before anything is built, read or encoded.

Hydra passes a command-line value through as written, so `trainer.max_epochs=abc` reaches Lightning as the string
"abc" and fails (with an empty AssertionError) only when `fit` starts, after the catalogue was encoded. The
options below are declared once, in `OPTIONS`: the key, the kinds of value it accepts and what it means.
`check_config` walks that table at the very start of a run and reports every bad value in one line naming the key,
the value and what is expected. Keys a config does not have (a baseline has no `model.dim`) are skipped; checks
that need the data or a library (a template's fields, the pooling names, a tuning mode) stay where they are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lmrec.config.kinds import BOOL, AnyMapping, ListOf, Matches, Number, OneOf, Option, Whole
from lmrec.errors import ConfigError

__all__ = ["OPTIONS", "Option", "check_config", "config_problems"]

#: numpy's seed range, which `pytorch_lightning.seed_everything` enforces.
SEED_MAX = 2**32 - 1


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


POSITIVE = Whole(1)
COUNT = Whole(0)
BATCHES = (Whole(0), Number(0.0, 1.0))  # Lightning's limit_*_batches: a number of batches or a fraction
DEVICES = (
    Whole(1),
    OneOf((-1, "auto", "-1")),
    ListOf(Whole(0)),
    Matches(r"\d+(,\d+)*,?", "a string of comma-separated device indices"),
)
MAX_TIME = Matches(r"\d+:\d{1,2}:\d{1,2}:\d{1,2}", 'a duration "DD:HH:MM:SS"')

#: Every option checked before a run builds anything. Lightning Trainer options first: Lightning checks few of
#: them at construction, and a wrong type there fails only once `fit` starts.
OPTIONS: tuple[Option, ...] = (
    Option("seed", (Whole(0, SEED_MAX),)),
    Option("train", (BOOL,)),
    Option("test", (BOOL,)),
    Option("export_split", (BOOL,)),
    Option("deterministic", (BOOL,)),
    Option("torch_threads", (POSITIVE,), nullable=True),
    Option("trainer.max_epochs", (Whole(-1),), nullable=True, note="-1: no limit"),
    Option("trainer.min_epochs", (COUNT,), nullable=True),
    Option("trainer.max_steps", (Whole(-1),), note="-1: no limit"),
    Option("trainer.min_steps", (COUNT,), nullable=True),
    Option("trainer.max_time", (MAX_TIME, AnyMapping("a mapping such as {hours: 1}")), nullable=True),
    Option("trainer.val_check_interval", (POSITIVE, Number(0.0, 1.0, open_low=True)), nullable=True,
           note="batches, or a fraction of an epoch"),
    Option("trainer.check_val_every_n_epoch", (POSITIVE,), nullable=True),
    Option("trainer.accumulate_grad_batches", (POSITIVE,)),
    Option("trainer.gradient_clip_val", (Number(0.0),), nullable=True, note="null: no clipping"),
    Option("trainer.gradient_clip_algorithm", (OneOf(("norm", "value")),), nullable=True),
    Option("trainer.devices", DEVICES),
    Option("trainer.num_nodes", (POSITIVE,)),
    Option("trainer.precision", (OneOf(_precisions()),)),
    Option("trainer.limit_train_batches", BATCHES, nullable=True, note="a number of batches, or a fraction"),
    Option("trainer.limit_val_batches", BATCHES, nullable=True, note="a number of batches, or a fraction"),
    Option("trainer.limit_test_batches", BATCHES, nullable=True, note="a number of batches, or a fraction"),
    Option("trainer.limit_predict_batches", BATCHES, nullable=True, note="a number of batches, or a fraction"),
    Option("trainer.log_every_n_steps", (COUNT,), nullable=True),
    Option("trainer.num_sanity_val_steps", (Whole(-1),), nullable=True, note="-1: every validation batch"),
    Option("trainer.deterministic", (BOOL, OneOf(("warn",))), nullable=True),
    Option("trainer.enable_model_summary", (BOOL,), nullable=True),
    Option("trainer.enable_progress_bar", (BOOL,), nullable=True),
    Option("trainer.enable_checkpointing", (BOOL,), nullable=True),
    Option("trainer.sync_batchnorm", (BOOL,)),
    Option("data.batch_size", (POSITIVE,), note="interactions per training batch"),
    Option("data.eval_batch_size", (POSITIVE, OneOf(("auto",)))),
    Option("data.eval_memory_mb", (Number(0.0, open_low=True),)),
    Option("data.num_workers", (COUNT,)),
    Option("data.seed", (Whole(0, SEED_MAX),)),
    Option("data.drop_invalid", (BOOL,)),
    Option("data.verify_checksums", (BOOL,)),
    Option("data.max_users", (POSITIVE,), nullable=True),
    Option("data.implicit.threshold", (Number(),), nullable=True),
    Option("data.kcore.user", (COUNT,)),
    Option("data.kcore.item", (COUNT,)),
    Option("data.filters.require_text", (BOOL,)),
    Option("data.filters.min_text_words", (COUNT,)),
    Option("data.split.ratios", (ListOf(Number(0.0)),), note="train:val:test proportions"),
    Option("data.split.cold_profile", (COUNT,)),
    Option("data.split.max_history", (POSITIVE,), nullable=True),
    Option("model.dim", (POSITIVE,), note="the width of user and item vectors"),
    Option("model.optimizer.lr", (Number(0.0, open_low=True),)),
    Option("model.optimizer.weight_decay", (Number(0.0),)),
    Option("model.tuning.lr", (Number(0.0, open_low=True),), nullable=True, note="null: model.optimizer.lr"),
    Option("model.tuning.weight_decay", (Number(0.0),), nullable=True),
    Option("model.encoder.max_length", (Whole(2),), note="tokens per item text, special tokens included"),
    Option("model.encoder.batch_size", (POSITIVE,)),
    Option("model.encoder.threads", (POSITIVE,), nullable=True),
    Option("model.encoder.normalize", (BOOL,)),
    Option("model.head.hidden", (ListOf(POSITIVE),), note="the MLP's layer widths"),
    Option("model.baseline.l2", (Number(0.0, open_low=True),), note="the regularisation strength"),
    Option("model.baseline.text_weight", (Number(0.0),), note="0: plain EASE"),
    Option("model.baseline.permute_text", (COUNT,), nullable=True, note="a permutation seed; null: the real texts"),
    Option("model.head.dropout", (Number(0.0, 1.0, open_high=True),)),
    Option("task.ks", (ListOf(POSITIVE),), note="top-K cut-offs"),
    Option("task.num_negatives", (POSITIVE,)),
    Option("task.temperature", (Number(0.0, open_low=True),)),
    Option("task.popularity_exponent", (Number(),)),
    Option("task.positive_threshold", (Number(),)),
    Option("task.seed", (Whole(0, SEED_MAX),)),
)  # fmt: skip

_ABSENT = object()


def _value(cfg: DictConfig, key: str) -> Any:
    """The resolved value at `key` (plain Python, lists as lists), or _ABSENT when the config has no such key."""
    try:
        node = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
    except OmegaConfBaseException as err:  # an interpolation that does not resolve (e.g. a missing env variable)
        raise ConfigError(f"{key}: cannot be resolved ({err})") from None
    if OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def _alias(cfg: DictConfig, key: str) -> str | None:
    """The key that `key` copies when its value is written `${other.key}` (e.g. `data.seed: ${seed}`), else None."""
    parent_key, _, last = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None) if parent_key else cfg
    if not isinstance(parent, DictConfig) or last not in parent or not OmegaConf.is_interpolation(parent, last):
        return None
    match = re.fullmatch(r"\$\{([\w.]+)\}", str(OmegaConf.to_container(parent, resolve=False)[last]))
    return match.group(1) if match else None


def config_problems(cfg: DictConfig, options: Sequence[Option] = OPTIONS) -> list[str]:
    """One message per option whose value is not of a kind the option accepts. A key that only copies another
    checked key (`data.seed: ${seed}`) is left to that key, so one mistake gives one message."""
    checked = {option.key for option in options}
    problems = []
    for option in options:
        value = _value(cfg, option.key)
        if value is _ABSENT or option.accepts(value) or _alias(cfg, option.key) in checked:
            continue
        problems.append(f"{option.key}={value!r}; expected {option.expected()}")
    return problems


def check_config(cfg: DictConfig, options: Sequence[Option] = OPTIONS) -> None:
    """Raise one ConfigError listing every bad value (so a user fixes them all in one go), or return."""
    problems = config_problems(cfg, options)
    if problems:
        more = f" ({len(problems)} bad values)" if len(problems) > 1 else ""
        raise ConfigError(" | ".join(problems) + more)
