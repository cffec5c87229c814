"""The data options (`data.*`): each option's default and its check, declared once, where the datamodule reads them.

The nested groups (`data.split`, `data.kcore`, ...) are frozen dataclasses: their fields are the options and their
defaults, so a key the group does not have is an error naming it instead of being silently ignored, and a test holds
`conf/data/_common.yaml` to these defaults. `DATA_OPTIONS` declares what each option accepts; rules that relate
several options (a temporal cut needs the temporal strategy) are checked by `check_data_options`. Every option that
shapes the processed tables is also part of the processed-cache key (`RecDataModule.options`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from lmrec.config.schema import BOOL, COUNT, POSITIVE, ListOf, Number, OneOf, Option, Whole
from lmrec.data.splits import COLD, STRATEGIES
from lmrec.errors import ConfigError

#: numpy's seed range, which `pytorch_lightning.seed_everything` enforces.
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Ratios:
    """Three non-negative train:val:test proportions with a positive sum."""

    def accepts(self, value: Any) -> bool:
        return bool(
            ListOf(Number(0.0)).accepts(value) and len(value) == 3 and sum(value) > 0  # ListOf: a non-empty list
        )

    def describe(self) -> str:
        return "three non-negative numbers with a positive sum, e.g. [8, 1, 1]"


@dataclass(frozen=True)
class TextOptions:
    """`data.text`: the item-text template over the source's item fields (null: the source's default template)."""

    template: list[str] | None = None
    separator: str = ". "


@dataclass(frozen=True)
class SplitOptions:
    """`data.split` (docs/data_protocols.md)."""

    strategy: str = "random"
    ratios: list[float] | tuple[float, ...] = (8, 1, 1)
    cut: list[float] | None = None
    cold_share: float = 0.2
    cold_profile: int = 0
    max_history: int | None = None


@dataclass(frozen=True)
class ImplicitOptions:
    """`data.implicit`: keep interactions rated at least `threshold` as positives (null: every one)."""

    threshold: float | None = None


@dataclass(frozen=True)
class KCoreOptions:
    """`data.kcore`: iterative k-core; 0 or 1 is off."""

    user: int = 0
    item: int = 0


@dataclass(frozen=True)
class FilterOptions:
    """`data.filters`: drop items by their rendered text."""

    require_text: bool = False
    min_text_words: int = 0


@dataclass(frozen=True)
class UserTextOptions:
    """`data.user_text`: what a user-text tower reads (null template: one `Field: {field}` per user field)."""

    template: list[str] | None = None
    separator: str = ". "


def option_group(cls: type, value: Any, key: str) -> Any:
    """`value` (a mapping, an instance or None) as the dataclass `cls`; an unknown key is a ConfigError naming it."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"data.{key}={value!r}; expected a mapping with keys {', '.join(_names(cls))}")
    unknown = sorted(set(value) - set(_names(cls)))
    if unknown:
        raise ConfigError(f"data.{key}.{unknown[0]} is not an option of data.{key}; expected {', '.join(_names(cls))}")
    return cls(**value)


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


DATA_OPTIONS: tuple[Option, ...] = (
    Option("batch_size", (POSITIVE,), note="interactions per training batch"),
    Option("eval_batch_size", (POSITIVE, OneOf(("auto",)))),
    Option("eval_memory_mb", (Number(0.0, open_low=True),)),
    Option("num_workers", (COUNT,)),
    Option("seed", (Whole(0, SEED_MAX),)),
    Option("drop_invalid", (BOOL,)),
    Option("verify_checksums", (BOOL,)),
    Option("max_users", (POSITIVE,), nullable=True),
    Option("implicit.threshold", (Number(),), nullable=True),
    Option("kcore.user", (COUNT,)),
    Option("kcore.item", (COUNT,)),
    Option("filters.require_text", (BOOL,)),
    Option("filters.min_text_words", (COUNT,)),
    Option("split.strategy", (OneOf(STRATEGIES),)),
    Option("split.ratios", (Ratios(),), note="train:val:test proportions"),
    Option("split.cut", (ListOf(Number()),), nullable=True, note="[validation_start, test_start] timestamps"),
    Option("split.cold_share", (Number(0.0, 1.0, open_low=True, open_high=True),)),
    Option("split.cold_profile", (COUNT,)),
    Option("split.max_history", (POSITIVE,), nullable=True),
)


def check_data_options(split: SplitOptions) -> None:
    """The rules that relate several data options (each option's own kind is checked by `DATA_OPTIONS`)."""
    strategy, ratios, cut = split.strategy, list(split.ratios), split.cut
    if cut is not None and (strategy != "temporal" or len(cut) != 2 or not float(cut[0]) <= float(cut[1])):
        raise ConfigError(
            f"data.split.cut={list(cut)} (strategy {strategy}); expected null, or with strategy=temporal two "
            "timestamps [validation_start, test_start] in increasing order"
        )
    if strategy in COLD and ratios[1] + ratios[2] <= 0:
        raise ConfigError(f"data.split.ratios={ratios}; {strategy} needs a validation or test share")
    if int(split.cold_profile) > 0 and strategy != "cold_users":
        raise ConfigError(
            f"data.split.cold_profile={split.cold_profile}; expected 0, or with strategy=cold_users the number of "
            "each cold user's earliest interactions kept in train"
        )
