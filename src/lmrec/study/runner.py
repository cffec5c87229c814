"""Running a study: every job a separate `lmrec-train` process in its own folder, skipped when already finished.

Layout of the study folder (`out`):

    spec.yaml                                  the spec the study runs (a resumed study must match it)
    runs/<dataset>/<setting>/<arm>/tune-<i>/   candidate i on validation (first seed, test=false)
    runs/<dataset>/<setting>/<arm>/seed-<s>/   the chosen candidate on seed s, tested, with per-user results
    report/<dataset>-<setting>/                lmrec-compare's report: the arms against the baseline arm
    study.md, study.json                       every choice and every result

A job is finished when its folder holds run.json and metrics.json (lmrec-train writes them last). A folder without
them is a job that was killed: it is removed and run again, so a killed study continues where it stopped and
reaches the same choices (each candidate's validation value is read back from its folder).

Why processes and not one Python loop: each run is exactly what `lmrec-train <overrides>` gives a user, with its
own run folder, seeds and memory; a crashed job leaves the others untouched.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lmrec.errors import ConfigError
from lmrec.study.spec import StudySpec


@dataclass(frozen=True)
class Job:
    """One lmrec-train run of the study."""

    dataset: str
    setting: str
    arm: str
    stage: str  # tune-<i> | seed-<s>
    candidate: tuple[str, ...]  # the overrides that make this configuration of the arm (empty: the arm as given)
    overrides: tuple[str, ...]
    folder: Path

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.setting}/{self.arm}/{self.stage}"


def finished(folder: Path) -> bool:
    return (folder / "run.json").is_file() and (folder / "metrics.json").is_file()


def validation_value(folder: Path) -> tuple[float, str] | None:
    """(the best validation value, `max` or `min`) a finished run recorded; None when it recorded none. The
    direction is the run's own resolved `task.monitor_mode`, as the task class declared it."""
    value = json.loads((folder / "run.json").read_text()).get("best_value")
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    resolved = yaml.safe_load((folder / "config_resolved.yaml").read_text()) or {}
    return float(value), str((resolved.get("task") or {}).get("monitor_mode", "max"))


def composed_config(overrides: tuple[str, ...]) -> str:
    """The train config `overrides` compose to (unresolved YAML): two candidates that compose alike are one
    configuration. A candidate that does not compose is refused here, before any run."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from lmrec.config.compose import compose_config

    try:
        return OmegaConf.to_yaml(compose_config("train", overrides))
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(f"study: lmrec-train {' '.join(overrides)} does not compose: {err}") from None


def recorded_overrides(folder: Path) -> list[str] | None:
    """The overrides a finished job's folder was run with (Hydra's record: the job's own first, then what the
    command adds), without the run folder itself."""
    record = folder / ".hydra" / "overrides.yaml"
    if not record.is_file():
        return None
    return [o for o in yaml.safe_load(record.read_text()) or [] if not str(o).startswith("hydra.run.dir=")]


def train_command(job: Job) -> list[str]:
    """The command of a job: the installed `lmrec-train` beside this interpreter."""
    return [str(Path(sys.executable).parent / "lmrec-train"), *job.overrides, f"hydra.run.dir={job.folder}"]


class Study:
    """Plans and runs one study into `out`; `command` turns a job into the process to start (tests swap it)."""

    def __init__(
        self,
        spec: StudySpec,
        out: Path,
        command: Callable[[Job], list[str]] = train_command,
        echo: Callable[[str], None] = print,
        identity: Callable[[tuple[str, ...]], Any] = composed_config,
    ) -> None:
        self.spec, self.out, self.command, self.echo, self.identity = spec, Path(out), command, echo, identity
        self._candidates: dict[tuple[str, str, str], list[tuple[str, ...]]] = {}
        self.failed: dict[str, str] = {}
        self.chosen: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()
        self.done = 0

    # -- the plan ------------------------------------------------------------------------------------------------
    def cells(self) -> list[tuple[str, str]]:
        return [(d, s) for d in self.spec.datasets for s in self.spec.settings]

    def base(self, dataset: str, setting: str, arm: str) -> tuple[str, ...]:
        spec = self.spec
        return (*spec.common, *spec.datasets[dataset], *spec.settings[setting], *spec.arms[arm].overrides)

    def folder(self, dataset: str, setting: str, arm: str, stage: str) -> Path:
        return self.out / "runs" / dataset / setting / arm / stage

    def candidates(self, dataset: str, setting: str, arm: str) -> list[tuple[str, ...]]:
        """The arm's distinct configurations in this cell (composed with the cell's overrides to tell them apart)."""
        key = (dataset, setting, arm)
        if key not in self._candidates:
            base = self.base(dataset, setting, arm)
            self._candidates[key] = self.spec.arms[arm].candidates(
                self.spec.budget, identity=lambda candidate: self.identity((*base, *candidate))
            )
        return self._candidates[key]

    def tuning_jobs(self, dataset: str, setting: str, arm: str) -> list[Job]:
        candidates = self.candidates(dataset, setting, arm)
        if len(candidates) == 1:  # nothing to choose: the arm runs as given
            return []
        seed = self.spec.seeds[0]
        return [
            Job(dataset, setting, arm, f"tune-{i}", c,
                (*self.base(dataset, setting, arm), *c, f"seed={seed}", "test=false", "per_user=false"),
                self.folder(dataset, setting, arm, f"tune-{i}"))
            for i, c in enumerate(candidates)
        ]  # fmt: skip

    def final_jobs(self, dataset: str, setting: str, arm: str, candidate: tuple[str, ...]) -> list[Job]:
        return [
            Job(dataset, setting, arm, f"seed-{s}", candidate,
                (*self.base(dataset, setting, arm), *candidate, f"seed={s}"),
                self.folder(dataset, setting, arm, f"seed-{s}"))
            for s in self.spec.seeds
        ]  # fmt: skip

    def total_jobs(self) -> int:
        total = 0
        for dataset, setting in self.cells():
            for arm in self.spec.arms:
                tried = len(self.candidates(dataset, setting, arm))
                total += (tried if tried > 1 else 0) + len(self.spec.seeds)  # one candidate: run as given, untuned
        return total

    def run(self) -> dict[str, Any]:
        """Every cell (dataset x setting): each arm tuned on validation, then run on every seed. Returns what was
        chosen and run, per cell and arm (the report's input)."""
        self.check_folder()
        total = self.total_jobs()
        self.echo(f"study: {len(self.cells())} cells x {len(self.spec.arms)} arms, {total} runs, into {self.out}")
        results: dict[str, Any] = {}
        for dataset, setting in self.cells():
            cell: dict[str, Any] = {}
            for arm in self.spec.arms:
                tuning = self.tuning_jobs(dataset, setting, arm)
                for job in tuning:
                    self.run_job(job, total)
                entry: dict[str, Any] = {"tuning": [], "candidate": [], "runs": []}
                if tuning:
                    try:
                        candidate, entry["tuning"] = self.choose(tuning)
                    except RuntimeError:
                        self.failed[f"{dataset}/{setting}/{arm}"] = "no tuning run finished; the arm is left out"
                        self.done += len(self.spec.seeds)
                        cell[arm] = entry
                        continue
                else:
                    candidate = ()
                entry["candidate"] = list(candidate)
                for job in self.final_jobs(dataset, setting, arm, candidate):
                    if self.run_job(job, total):
                        entry["runs"].append(str(job.folder))
                cell[arm] = entry
            results[f"{dataset}-{setting}"] = cell
        return results

    # -- running -------------------------------------------------------------------------------------------------
    def check_folder(self) -> None:
        """A new folder, or one holding this very spec (a resumed study); anything else is refused."""
        spec_file = self.out / "spec.yaml"
        mine = yaml.safe_dump(spec_as_dict(self.spec), sort_keys=True)
        if spec_file.is_file():
            if spec_file.read_text() != mine:
                raise ConfigError(
                    f"{self.out} holds a study of another spec ({spec_file}); choose another out= or remove it"
                )
        elif self.out.exists() and any(self.out.iterdir()):
            raise ConfigError(f"out={self.out} exists and is not a study folder; choose another out=")
        self.out.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(mine)

    def run_job(self, job: Job, total: int) -> bool:
        """Run `job` unless it is finished; whether it finished."""
        self.done += 1
        if finished(job.folder):
            recorded = recorded_overrides(job.folder)
            if recorded is not None and recorded[: len(job.overrides)] != list(job.overrides):
                raise ConfigError(
                    f"{job.folder} was run with other overrides than this study plans for it ({recorded} against "
                    f"{list(job.overrides)}): lmrec changed how it plans a study; remove that folder or choose "
                    "another out="
                )
            self.echo(f"[{self.done}/{total}] {job.name}: done before")
            return True
        if job.folder.exists():
            shutil.rmtree(job.folder)  # killed part-way: run it again from the start
        job.folder.parent.mkdir(parents=True, exist_ok=True)
        log = job.folder.parent / f"{job.stage}.log"
        began = time.monotonic()
        with open(log, "w") as handle:
            code = subprocess.run(self.command(job), stdout=handle, stderr=subprocess.STDOUT).returncode
        seconds = time.monotonic() - began
        if code != 0 or not finished(job.folder):
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            self.failed[job.name] = f"exit {code}: {tail[0][:300]} (log: {log})"
            self.echo(f"[{self.done}/{total}] {job.name}: FAILED after {seconds:.0f} s ({self.failed[job.name]})")
            return False
        left = (time.monotonic() - self.started) / self.done * (total - self.done)
        self.echo(f"[{self.done}/{total}] {job.name}: {seconds:.0f} s (about {left / 60:.0f} min left)")
        return True

    def choose(self, jobs: list[Job]) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
        """The candidate with the best validation value among the finished tuning jobs, and every candidate's row."""
        rows, best, best_value = [], None, None
        for job in jobs:
            measured = validation_value(job.folder) if finished(job.folder) else None
            candidate = job.candidate
            rows.append({"stage": job.stage, "overrides": list(candidate), "val": measured and measured[0]})
            if measured is not None:
                value, mode = measured
                better = best_value is None or (value > best_value if mode == "max" else value < best_value)
                if better:
                    best, best_value = candidate, value
        if best is None:
            raise RuntimeError("no tuning run finished")
        for row in rows:
            row["chosen"] = tuple(row["overrides"]) == best
        return best, rows


def spec_as_dict(spec: StudySpec) -> dict[str, Any]:
    return {
        "seeds": list(spec.seeds),
        "budget": spec.budget,
        "common": list(spec.common),
        "datasets": {k: list(v) for k, v in spec.datasets.items()},
        "settings": {k: list(v) for k, v in spec.settings.items()},
        "arms": {
            n: {"overrides": list(a.overrides), "search": {k: list(v) for k, v in a.search.items()}}
            for n, a in spec.arms.items()
        },
        "baseline": spec.baseline,
        "compare": dict(spec.compare),
    }
