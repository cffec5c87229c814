"""Config values checked against the schemas their components declare, before anything is built, read or encoded.

Hydra passes a command-line value through as written, so `trainer.max_epochs=abc` reaches Lightning as the string
"abc" and fails (with an empty AssertionError) only when `fit` starts, after the catalogue was encoded. Each
component declares the options it reads where it is defined (`config_options`, `lmrec.config.schema`); this module
only collects those declarations: for every node of the config whose `_target_` is lmrec's (or a researcher's
allowed package), the target's declared options are checked under that node's key, together with the options the
entry point declares for nodes it builds itself (the run's top-level keys, Lightning's trainer). Every bad value
is reported in one line naming the key, the value and what is expected, all at once, as torchtune's
`config._validate` does. Keys a config does not have (a baseline has no `model.dim`) are skipped; checks that need
the data or a library (a template's fields, the pooling names, a tuning mode) stay with the code that has them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lmrec.config.allowlist import check_target, user_prefixes
from lmrec.config.schema import Option
from lmrec.errors import ConfigError

__all__ = ["check_config", "config_problems", "declared_options"]

_ABSENT = object()


def _target_nodes(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """(key, target) of every node with a `_target_`, in the config's own order, outer nodes first."""
    if isinstance(node, Mapping):
        target = node.get("_target_")
        if isinstance(target, str):
            yield key, target
        for name, child in node.items():
            if isinstance(name, str) and not name.startswith("_"):
                yield from _target_nodes(child, f"{key}.{name}" if key else name)


def _declares_options(target: str) -> bool:
    """Only lmrec's own targets and a researcher's allowed ones can declare options; others are not imported."""
    return any(target.startswith(prefix) for prefix in ("lmrec.", *user_prefixes()))


def declared_options(cfg: DictConfig, entry: Mapping[str, Sequence[Option]] | None = None) -> list[Option]:
    """Every option that applies to `cfg`, keyed absolutely: those of the entry point (`entry`: node key -> the
    options of a node it builds itself, "" for top-level keys), then those each lmrec target declares."""
    options = [option.under(prefix) for prefix, declared in (entry or {}).items() for option in declared]
    plain = OmegaConf.to_container(cfg, resolve=False)
    for key, target in _target_nodes(plain):
        if _declares_options(target):
            component = check_target(target, key)
            options += [option.under(key) for option in getattr(component, "config_options", ())]
    return options


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


def config_problems(cfg: DictConfig, options: Sequence[Option]) -> list[str]:
    """One message per option whose value is not of a kind the option accepts. A key that only copies another
    checked key (`data.seed: ${seed}`) is left to that key, so one mistake gives one message."""
    checked = {option.key for option in options}
    problems, seen = [], set()
    for option in options:
        if option.key in seen:  # a component that is built twice from one node (never the case today) checks once
            continue
        seen.add(option.key)
        value = _value(cfg, option.key)
        if value is _ABSENT or option.accepts(value) or _alias(cfg, option.key) in checked:
            continue
        problems.append(f"{option.key}={value!r}; expected {option.expected()}")
    return problems


def check_config(cfg: DictConfig, entry: Mapping[str, Sequence[Option]] | None = None) -> None:
    """Raise one ConfigError listing every bad value (so a user fixes them all in one go), or return."""
    problems = config_problems(cfg, declared_options(cfg, entry))
    if problems:
        more = f" ({len(problems)} bad values)" if len(problems) > 1 else ""
        raise ConfigError(" | ".join(problems) + more)
