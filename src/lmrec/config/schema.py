"""A component's config schema: the options it reads, the kinds of value each accepts, each able to say in words
what it accepts.

A component declares its options where it is defined, as a class attribute `config_options` (keys relative to its
own config node: `RecDataModule.config_options` holds `batch_size`, checked at `data.batch_size`); option groups
that no class is built from (`model.encoder`, `model.tuning`, the run's top-level keys) are declared by the code
that reads them. `lmrec.config.validate` collects every declaration a config reaches and checks them all at once,
before anything is built; a component built from Python rather than a config checks its arguments against the same
declaration (`check_values`). One rule, one declaration, whichever way the values arrive; an error message is built
from the same declaration that does the check, so the two cannot disagree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

__all__ = [
    "BOOL",
    "COUNT",
    "POSITIVE",
    "AnyMapping",
    "Flag",
    "Kind",
    "ListOf",
    "Matches",
    "Number",
    "OneOf",
    "Option",
    "Whole",
    "nested",
]


class Kind(Protocol):
    """One kind of value an option accepts."""

    def accepts(self, value: Any) -> bool: ...

    def describe(self) -> str: ...


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


@dataclass(frozen=True)
class Whole:
    """An int (never a bool: `true` is not 1 epoch) in [low, high]."""

    low: int | None = None
    high: int | None = None

    def accepts(self, value: Any) -> bool:
        return _is_int(value) and _within(value, self.low, self.high, False, False)

    def describe(self) -> str:
        return "a whole number" + _bounds(self.low, self.high, False, False)


@dataclass(frozen=True)
class Number:
    """A finite int or float in the range; `open_low` / `open_high` exclude the bound itself."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def accepts(self, value: Any) -> bool:
        return _is_number(value) and _within(value, self.low, self.high, self.open_low, self.open_high)

    def describe(self) -> str:
        return "a number" + _bounds(self.low, self.high, self.open_low, self.open_high)


@dataclass(frozen=True)
class OneOf:
    """One of a fixed set of values (compared with ==, type included: 16 and "16" are both listed if both work)."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in self.values)


@dataclass(frozen=True)
class ListOf:
    """A non-empty list whose every element is of `item`'s kind."""

    item: Kind

    def accepts(self, value: Any) -> bool:  # a tuple too: a component built from Python may take one
        return isinstance(value, list | tuple) and bool(value) and all(self.item.accepts(v) for v in value)

    def describe(self) -> str:
        return f"a non-empty list, each {self.item.describe()}"


@dataclass(frozen=True)
class Matches:
    """A string matching `pattern`; `what` says in words what the pattern allows."""

    pattern: str
    what: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and re.fullmatch(self.pattern, value) is not None

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class AnyMapping:
    """A mapping (e.g. Lightning's `max_time: {hours: 1}`); its keys are the library's to check."""

    what: str = "a mapping"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class Flag:
    """true or false (YAML spells them so; a string "yes" is not a flag)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


BOOL = Flag()
POSITIVE = Whole(1)
COUNT = Whole(0)


def _within(value: float, low: float | None, high: float | None, open_low: bool, open_high: bool) -> bool:
    if low is not None and (value < low or (open_low and value == low)):
        return False
    return high is None or not (value > high or (open_high and value == high))


def _bounds(low: float | None, high: float | None, open_low: bool, open_high: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    if low is not None:
        return f" {'>' if open_low else '>='} {low}"
    if high is not None:
        return f" {'<' if open_high else '<='} {high}"
    return ""


_NO_DEFAULT: Any = object()


@dataclass(frozen=True)
class Option:
    """A config key, the kinds of value it accepts (any one will do), whether null is allowed, and a note.

    `default` is set only where no constructor holds the option's default (an option group read as a mapping, such
    as `model.encoder`); a test holds the shipped yaml to it, as it holds each yaml to its constructor's defaults.
    """

    key: str
    kinds: tuple[Kind, ...]
    nullable: bool = False
    note: str = ""
    default: Any = _NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    def under(self, prefix: str) -> Option:
        """The same option one level down: `batch_size` under `data` is `data.batch_size`."""
        return replace(self, key=f"{prefix}.{self.key}" if prefix else self.key)

    def expected(self) -> str:
        parts = [kind.describe() for kind in self.kinds] + (["null"] if self.nullable else [])
        text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]
        return f"{text} ({self.note})" if self.note else text

    def accepts(self, value: Any) -> bool:
        return (value is None and self.nullable) or any(kind.accepts(value) for kind in self.kinds)


def nested(prefix: str, options: Iterable[Option]) -> tuple[Option, ...]:
    """`options` declared by another component, read here under `prefix` (a builder that reads `encoder.*`)."""
    return tuple(option.under(prefix) for option in options)


def value_problems(options: Iterable[Option], values: Mapping[str, Any], prefix: str = "") -> list[str]:
    """One message per option whose value in `values` (a plain mapping; dotted keys walk into nested mappings) is
    not of a kind it accepts; absent keys are skipped. For a component built from Python rather than a config."""
    problems = []
    for option in options:
        value: Any = values
        for part in option.key.split("."):
            value = value.get(part, _NO_DEFAULT) if isinstance(value, Mapping) else _NO_DEFAULT
        if value is not _NO_DEFAULT and not option.accepts(value):
            key = f"{prefix}.{option.key}" if prefix else option.key
            problems.append(f"{key}={value!r}; expected {option.expected()}")
    return problems


def check_values(options: Iterable[Option], values: Mapping[str, Any], prefix: str = "") -> None:
    """`value_problems` as one ConfigError listing them all."""
    from lmrec.errors import ConfigError

    problems = value_problems(options, values, prefix)
    if problems:
        raise ConfigError(" | ".join(problems) + (f" ({len(problems)} bad values)" if len(problems) > 1 else ""))
