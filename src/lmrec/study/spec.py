"""A study's specification (`conf/study/<name>.yaml` or any YAML file), checked before any run starts.

A study crosses datasets (override lists: `[data=unisrec, data.source.root=...]`; `[]` is the bundled data),
settings (the dataset's own split, cold-start items, ...) and arms (the models compared, each with the overrides
that make it and a search space), runs each arm's search on the validation split with the same budget, then the
best configuration on every seed, and compares the arms with `lmrec-compare` against the baseline arm.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lmrec.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
KEYS = ("seeds", "budget", "common", "datasets", "settings", "arms", "baseline", "compare")


@dataclass(frozen=True)
class Arm:
    """One model of the study: the overrides that make it, and the values its search may try per key."""

    name: str
    overrides: tuple[str, ...]
    search: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def candidates(
        self, budget: int, seed: int = 0, identity: Callable[[tuple[str, ...]], Hashable] | None = None
    ) -> list[tuple[str, ...]]:
        """The configurations tried on validation: the arm as given first, then up to `budget - 1` others from the
        search grid (all of them when the grid is that small, else in a seeded order): every arm gets `budget`.

        `identity` names the configuration a candidate composes to; a candidate that composes to one already chosen
        (a searched value that is already the arm's default) is skipped for the next, so the budget buys distinct
        configurations."""
        keys = sorted(self.search)
        grid = [tuple(f"{k}={format_value(v)}" for k, v in zip(keys, values, strict=True))
                for values in itertools.product(*(self.search[k] for k in keys))]  # fmt: skip
        grid = [c for c in grid if c]  # no search: nothing but the arm as given
        if len(grid) > budget - 1:  # seeded; its first budget - 1 are random.sample(grid, budget - 1), as before
            grid = random.Random(seed).sample(grid, len(grid))
        same = identity or (lambda candidate: candidate)
        chosen: list[tuple[str, ...]] = []
        seen: set[Hashable] = set()
        for candidate in [(), *grid]:
            if len(chosen) == budget:
                break
            key = same(candidate)
            if key not in seen:
                seen.add(key)
                chosen.append(candidate)
        return chosen


@dataclass(frozen=True)
class StudySpec:
    seeds: tuple[int, ...]
    budget: int
    common: tuple[str, ...]
    datasets: dict[str, tuple[str, ...]]
    settings: dict[str, tuple[str, ...]]
    arms: dict[str, Arm]
    baseline: str | None
    compare: dict[str, Any]


def format_value(value: Any) -> str:
    """A search value as a Hydra override value (lists and mappings in flow style)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def _overrides(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise ConfigError(f"study {key}={value!r}: expected a list of overrides such as [model=ease, seed=1]")
    for override in value:
        if override.split("=", 1)[0].lstrip("+~") in ("seed", "hydra.run.dir", "hydra.sweep.dir", "test"):
            raise ConfigError(f"study {key}: {override!r} is set by the study itself; leave it out")
    return tuple(value)


def _named(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"study {key}: expected a mapping of names to entries, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError(f"study {key}: {name!r} is not a usable name (letters, digits, _ . -)")
    return value


def _arm(name: str, entry: Any) -> Arm:
    where = f"arms.{name}"
    if not isinstance(entry, dict) or set(entry) - {"overrides", "search"}:
        raise ConfigError(f"study {where}: expected {{overrides: [...], search: {{key: [values]}}}}, got {entry!r}")
    search = entry.get("search") or {}
    if not isinstance(search, dict):
        raise ConfigError(f"study {where}.search: expected a mapping of override keys to lists of values")
    for key, values in search.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"study {where}.search.{key}: expected a non-empty list of values, got {values!r}")
    return Arm(name, _overrides(entry.get("overrides"), f"{where}.overrides"),
               {str(k): tuple(v) for k, v in search.items()})  # fmt: skip


def parse_spec(raw: Any, where: str = "study") -> StudySpec:
    """A checked `StudySpec` from the YAML's mapping; every problem one line naming the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(KEYS)}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected {', '.join(KEYS)}")
    seeds = raw.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"study seeds={seeds!r}: expected a list of seeds such as [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"study seeds={seeds!r}: each seed once")
    budget = raw.get("budget", 4)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"study budget={budget!r}: expected the configurations tried per arm (a whole number >= 1)")
    datasets = {n: _overrides(v or [], f"datasets.{n}") for n, v in _named(raw.get("datasets"), "datasets").items()}
    settings = {n: _overrides(v or [], f"settings.{n}") for n, v in _named(raw.get("settings"), "settings").items()}
    arms = {n: _arm(n, e) for n, e in _named(raw.get("arms"), "arms").items()}
    baseline = raw.get("baseline")
    if baseline is not None and baseline not in arms:
        raise ConfigError(f"study baseline={baseline!r}: expected one of the arms ({', '.join(arms)}) or null")
    compare = raw.get("compare") or {}
    if not isinstance(compare, dict):
        raise ConfigError(f"study compare={compare!r}: expected lmrec-compare's options by name")
    common = _overrides(raw.get("common") or [], "common")
    return StudySpec(tuple(seeds), budget, common, datasets, settings, arms, baseline, dict(compare))


def spec_path(name: str, conf_dir: Path) -> Path:
    """A spec by name (`conf/study/<name>.yaml`) or by path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"spec={name}: no such file")
        return path
    shipped = conf_dir / "study" / f"{name}.yaml"
    if not shipped.is_file():
        names = sorted(p.stem for p in (conf_dir / "study").glob("*.yaml"))
        raise ConfigError(f"spec={name}: no study of that name; shipped: {', '.join(names)} (or give a .yaml path)")
    return shipped


def load_spec(path: Path, changes: dict[str, Any] | None = None) -> StudySpec:
    """The spec in `path` with top-level keys replaced and `datasets.<name>` / `settings.<name>` entries added or
    replaced by `changes` (the command line's)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    raw = dict(raw or {})
    for key, value in (changes or {}).items():
        group, _, name = key.partition(".")
        if name and group in ("datasets", "settings", "arms"):
            raw[group] = {**(raw.get(group) or {}), name: value}
            if value is None:
                raw[group].pop(name)
        elif not name:
            raw[key] = value
        else:
            raise ConfigError(f"{key}: only datasets.<name>, settings.<name> and arms.<name> take a name")
    return parse_spec(raw, str(path))
