"""The runs a comparison reads: which folders, which configuration each is, which seed, and whether two may be paired.

A paired test compares two models user by user, so it is only meaningful when both were evaluated on the same users
and items in the same way: the same data (the processed-data fingerprint run.json records, which covers the source's
files, the filters, the split and its seed) and the same evaluation protocol (the task, its tie policy, its masking
of seen items, sampled metrics). Runs that differ only by `seed` are one configuration measured on several splits
(seed s of one configuration pairs with seed s of another). A folder is read as data: run.json, metrics.json,
the recorded overrides and the saved config, never code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from lmrec.config.secrets import redact_override
from lmrec.errors import MissingInputError, RunFolderError
from lmrec.runs.folder import read_config, read_metrics, read_recorded_overrides, read_run_info
from lmrec.runs.per_user import read_per_user

#: Overrides that say where a run logs and writes, or how it is started, not what it computes.
PLACE_KEYS = ("hydra.", "paths.", "logger", "resume", "overwrite", "per_user", "torch_threads", "trainer.devices",
              "compare", "comparison",
              "trainer.accelerator", "trainer.strategy", "trainer.num_nodes", "data.num_workers",
              "data.eval_batch_size", "data.eval_memory_mb")  # fmt: skip
#: Task options that change what a metric means: two runs that differ here are not evaluated alike.
PROTOCOL_KEYS = ("_target_", "ties", "mask_history", "sampled_eval", "auc")
#: Task classes whose evaluation is one and the same (the ranking task's full ranking of every user's held-out
#: items, over the same users and masks): a next-item model pairs with a fitted baseline on the same split.
EVALUATED_ALIKE = {
    "lmrec.tasks.ranking.RankingTask": "full ranking (lmrec.tasks.ranking)",
    "lmrec.tasks.next_item.NextItemTask": "full ranking (lmrec.tasks.ranking)",
    "lmrec.tasks.rerank.RerankTask": "full ranking (lmrec.tasks.ranking)",
}
#: Protocol values a task class fixes instead of exposing as options: a reranker's full-catalogue ranking always
#: leaves out the items a user already has (its candidates never hold one).
IMPLIED_PROTOCOL = {"lmrec.tasks.rerank.RerankTask": {"mask_history": True}}


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


@dataclass
class Run:
    """One finished run folder, read as data."""

    folder: Path
    info: dict[str, Any]
    metrics: dict[str, Any]
    overrides: list[str]
    seed: int | None
    protocol: dict[str, Any]
    label: str = ""
    _tables: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)

    @property
    def data_key(self) -> str:
        return str(self.info.get("data_key") or "")

    @property
    def configuration(self) -> tuple[str, ...]:
        """The overrides that name what the run computes (its seed, places and start options left out)."""
        return tuple(o for o in self.overrides if _key(o) != "seed" and not _key(o).startswith(PLACE_KEYS))

    def per_user(self, split: str = "test") -> pd.DataFrame:
        """The run's per-user table of `split` (read once); a one-line error when the run wrote none."""
        if split not in self._tables:
            self._tables[split] = read_per_user(self.folder, split)
        table = self._tables[split]
        if table is None:
            raise MissingInputError(
                f"{self.folder} has no per_user/{split}.parquet (it was run with per_user=false, or before lmrec wrote "
                "per-user results); re-run it, or `lmrec-eval run=<it>` writes one"
            )
        return table

    @cached_property
    def cost(self) -> dict[str, Any]:
        """What the run cost, from run.json: parameters, seconds (encoding, training, test pass), memory, device."""
        params, encoding = self.info.get("params") or {}, self.info.get("encoding") or {}
        logged = {k: v for k, v in (self.metrics or {}).items() if "/cost/" in k}  # test-split figures
        task_cost = {**logged, **(self.info.get("task_cost") or {})}
        return {
            "params_total": params.get("total"),
            "params_trainable": params.get("trainable"),
            "encode_seconds": encoding.get("encode_seconds"),
            "train_seconds": self.info.get("train_seconds"),
            "test_seconds": self.info.get("test_seconds"),
            "run_seconds": self.info.get("seconds"),
            "peak_memory_mb": self.info.get("peak_memory_mb"),
            "device": self.info.get("device"),
            # A task's own cost figures (run.json `task_cost`: a reranker's prompt tokens and ranking time).
            "prompt_tokens_per_user": task_cost.get("test/cost/prompt_tokens_per_user"),
            "seconds_per_1k_users": task_cost.get("test/cost/seconds_per_1k_users"),
            "seconds_per_step": task_cost.get("train/cost/seconds_per_step"),
        }


def read_run(folder: Path) -> Run:
    """A finished run folder (run.json and metrics.json written); a one-line error otherwise."""
    folder = Path(folder)
    info, metrics = read_run_info(folder), read_metrics(folder)
    if info is None or metrics is None:
        raise RunFolderError(f"{folder} holds no finished run (no run.json or metrics.json); was it killed?")
    config = read_config(folder)
    seed = OmegaConf.select(config, "seed", default=None) if config is not None else None
    task = OmegaConf.to_container(config.task, resolve=False) if config is not None and "task" in config else {}
    protocol = {key: task.get(key) for key in PROTOCOL_KEYS if key in task}
    protocol |= IMPLIED_PROTOCOL.get(str(protocol.get("_target_")), {})
    if "_target_" in protocol:
        protocol["_target_"] = EVALUATED_ALIKE.get(str(protocol["_target_"]), protocol["_target_"])
    overrides = [redact_override(o) for o in read_recorded_overrides(folder)]
    return Run(folder, info, metrics, overrides, int(seed) if seed is not None else None, protocol)


def find_runs(paths: Iterable[Path]) -> list[Run]:
    """Every finished run under `paths` (run folders or sweep folders, searched for run.json), in a stable order."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise MissingInputError(f"{path} does not exist")
        found += [path] if (path / "run.json").is_file() else sorted(p.parent for p in path.rglob("run.json"))
    if not found:
        raise MissingInputError(f"no finished run (a folder with run.json) under {', '.join(map(str, paths))}")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return [read_run(p) for p in sorted(unique, key=_natural)]


def _natural(path: Path) -> list[Any]:
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


@dataclass
class Configuration:
    """One configuration measured on one or several seeds (runs that differ only by seed)."""

    label: str
    runs: dict[int | None, Run]

    @property
    def seeds(self) -> list[int | None]:
        return sorted(self.runs, key=lambda s: (s is None, s if s is not None else 0))


def group_configurations(runs: Sequence[Run]) -> list[Configuration]:
    """Runs grouped by everything but their seed; labelled by the overrides that tell the configurations apart
    (all of them when only one configuration exists), else by the folder name."""
    groups: dict[tuple[str, ...], dict[int | None, Run]] = {}
    for run in runs:
        seeds = groups.setdefault(run.configuration, {})
        if run.seed in seeds:
            raise RunFolderError(
                f"{run.folder} and {seeds[run.seed].folder} are the same configuration with the same seed; "
                "compare one of them"
            )
        seeds[run.seed] = run
    shared = set.intersection(*(set(c) for c in groups)) if len(groups) > 1 else set()
    configurations = []
    for overrides, seeds in groups.items():
        own = [o for o in overrides if o not in shared]
        label = " ".join(own) or " ".join(overrides) or next(iter(seeds.values())).folder.name
        configurations.append(Configuration(label, seeds))
        for run in seeds.values():
            run.label = label
    return configurations


def check_pairable(a: Run, b: Run) -> None:
    """Refuse (one line) to pair two runs evaluated on other users, items or protocol."""
    if a.data_key != b.data_key or not a.data_key:
        raise RunFolderError(
            f"{a.folder} and {b.folder} were not evaluated on the same data (data fingerprints {a.data_key or '?'} "
            f"and {b.data_key or '?'}: another dataset, filter, split or split seed); a paired comparison needs the "
            "same users and items"
        )
    differing = sorted(k for k in set(a.protocol) | set(b.protocol) if a.protocol.get(k) != b.protocol.get(k))
    if differing:
        shown = ", ".join(f"task.{k}: {a.protocol.get(k)!r} vs {b.protocol.get(k)!r}" for k in differing)
        raise RunFolderError(f"{a.folder} and {b.folder} were evaluated differently ({shown}); they cannot be paired")


def pick(configurations: Sequence[Configuration], wanted: str) -> Configuration:
    """The configuration a user names (`item_tower=id` matches `model/item_tower=id`); one line if none or several."""
    exact = [c for c in configurations if c.label == wanted]
    matches = exact or [c for c in configurations if wanted in c.label]
    if len(matches) != 1:
        labels = "; ".join(c.label for c in configurations)
        what = "matches none" if not matches else f"matches {len(matches)}"
        raise RunFolderError(f"baseline {wanted!r} {what} of the configurations ({labels})")
    return matches[0]


def finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
