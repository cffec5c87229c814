"""Data, models and whole jobs built exactly as `lmrec-train` builds them: the only way benchmarks get either.

A benchmark that built its datamodule or model by hand would measure something `lmrec-train` never runs (the
MostPop script once used seed 0 where the config uses `${seed}`), so every benchmark composes the train config
with overrides (`compose`), builds data with `lmrec.cli.components.build_data` and models with the builder the
config names (`build_model`), or runs `lmrec-train` itself (`run_train`) when the whole job is what is measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, open_dict

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from lmrec.data.datamodule import RecDataModule
    from lmrec.tasks.base import Task

#: The slice every quick run trains on: the first 20 users of the bundled data (about 1,900 items, 3,200 ratings).
QUICK_DATA = ("data.max_users=20",)


def compose(overrides: Sequence[str], workdir: Path, cache_dir: Path | None = None) -> DictConfig:
    """The `lmrec-train` config with these overrides, writing under `workdir` (no Hydra run folder); the cache
    under `cache_dir` (None: the config's own `paths.cache_dir`, the one lmrec-train runs share)."""
    from lmrec.config.compose import compose_config

    cfg = compose_config("train", ["logger=csv", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(Path(workdir) / "run")
        if cache_dir is not None:
            cfg.paths.cache_dir = str(cache_dir)
    return cfg


def prepared(cfg: DictConfig) -> tuple[Task, RecDataModule]:
    """The task and the loaded datamodule of `cfg`, built by `build_data` as every entry point builds them."""
    from lmrec.cli.components import build_data

    task, datamodule = build_data(cfg)
    datamodule.prepare()
    return task, datamodule


def build_model(cfg: DictConfig, datamodule: RecDataModule, task: Task, **options: Any) -> pl.LightningModule:
    """The model the builder `cfg.model` names, over the loaded datamodule (nothing trained)."""
    from lmrec.model.builders import model_builder

    return model_builder(cfg.model).build(datamodule, task, **options)


def encoder_kwargs(encoder_cfg: DictConfig) -> tuple[dict[str, Any], int]:
    """(TextEncoder arguments, texts per pass) of a `model.encoder` section, as the frozen-embedding cache reads
    it (the cache's own `threads` option left out)."""
    from lmrec.encoders.configured import encoder_options

    options, batch_size = encoder_options(encoder_cfg)
    options.pop("threads", None)
    return options, batch_size


def tiny_encoder_overrides(workdir: Path, layers: int = 2) -> list[str]:
    """Overrides that swap the packaged MiniLM for a tiny random BERT with its tokenizer (built once under
    `workdir`), encoding on one thread: quick runs then encode in milliseconds, through the same code, even beside
    a busy neighbour (where two threads on two cores run many times slower, docs/benchmarks.md §10)."""
    from lmrec.bench.tiny_models import tiny_bert

    folder = tiny_bert(Path(workdir) / f"tiny-bert-{layers}", layers)
    return [f"model.encoder.name_or_path={folder}", "model.encoder.threads=1"]


def train_command() -> list[str]:
    """The installed `lmrec-train` beside this interpreter, else the module (a checkout without scripts)."""
    script = Path(sys.executable).with_name("lmrec-train")
    if not script.is_file():
        script = Path(shutil.which("lmrec-train") or script)
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lmrec.cli.train"]


def job_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a benchmarked job: offline hub, quiet tokenizers, W&B silent (logger=csv anyway)."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("WANDB_SILENT", "true")
    env.update(extra or {})
    return env


@dataclass
class TrainRun:
    """One `lmrec-train` process: its command, exit code, wall time and what it wrote in its run folder."""

    command: list[str]
    returncode: int
    wall_s: float
    run_dir: Path
    log: Path
    metrics: dict[str, float] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)

    def check(self) -> TrainRun:
        """The run itself, or a RuntimeError with the end of its log when it failed."""
        if self.returncode != 0:
            tail = self.log.read_text()[-3000:] if self.log.is_file() else ""
            raise RuntimeError(f"lmrec-train failed with exit code {self.returncode} ({self.log}):\n{tail}")
        return self


def run_train(
    overrides: Sequence[str],
    run_dir: Path,
    env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
    poll: Any = None,
) -> TrainRun:
    """Run `lmrec-train logger=csv hydra.run.dir=<run_dir> <overrides>` to completion, output to `<run_dir>.log`.

    `wrapper` is prepended to the command (e.g. a process that records its children's peak memory); `poll(proc)`
    is called about every 0.1 s while the job runs (e.g. to sample its memory)."""
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = run_dir.parent / f"{run_dir.name}.log"
    command = [*train_command(), "logger=csv", f"hydra.run.dir={run_dir}", *overrides]
    with open(log, "w") as out:
        start = time.perf_counter()
        process = subprocess.Popen([*wrapper, *command], stdout=out, stderr=subprocess.STDOUT, env=job_env(env))
        while process.poll() is None:
            if poll is not None:
                poll(process)
            time.sleep(0.1)
        wall = time.perf_counter() - start
    run = TrainRun(command, process.returncode, wall, run_dir, log)
    if (run_dir / "metrics.json").is_file():
        run.metrics = json.loads((run_dir / "metrics.json").read_text())
    if (run_dir / "run.json").is_file():
        run.run = json.loads((run_dir / "run.json").read_text())
    return run


def shown(command: Sequence[str]) -> str:
    """A command as a reader would type it: `lmrec-train` by name, not by the path of this machine's script."""
    parts = list(command)
    if parts and Path(parts[0]).name == "lmrec-train":
        parts[0] = "lmrec-train"
    return " ".join(parts)
