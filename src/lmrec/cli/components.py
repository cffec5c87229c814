"""The pieces `lmrec-train`, `lmrec-eval` and `lmrec-data` build from a config, in the order that fails fastest."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from lmrec.config.arguments import BuildFacts
from lmrec.config.schema import BOOL, POSITIVE, Option, Whole
from lmrec.config.validate import check_config
from lmrec.data.configured import build_datamodule, build_source
from lmrec.data.datamodule import RecDataModule
from lmrec.runtime.trainer import TRAINER_OPTIONS
from lmrec.sweeps.comparison import requested_table
from lmrec.tasks.base import RetrieverLoader, Task, build_task

#: numpy's seed range, which `pytorch_lightning.seed_everything` enforces.
SEED_MAX = 2**32 - 1

#: The run's own top-level options (`conf/train.yaml`), read by the entry points.
RUN_OPTIONS: tuple[Option, ...] = (
    Option("seed", (Whole(0, SEED_MAX),)),
    Option("train", (BOOL,)),
    Option("test", (BOOL,)),
    Option("export_split", (BOOL,)),
    Option("deterministic", (BOOL,)),
    Option("torch_threads", (POSITIVE,), nullable=True),
    Option("per_user", (BOOL,), note="write each evaluated user's metric values to per_user/<split>.parquet"),
)

#: Options of the nodes an entry point builds itself (node key -> options); components declare their own.
ENTRY_OPTIONS = {"": RUN_OPTIONS, "trainer": TRAINER_OPTIONS}


def check_run_config(cfg: DictConfig) -> None:
    """Every option of the run, the entry point's and each component's, checked at once before any work; then the
    sweep table a `comparison` node asks for (written by a Hydra callback after each job: a typo fails now)."""
    check_config(cfg, ENTRY_OPTIONS)
    requested_table(cfg)


def seed_run(cfg: DictConfig) -> None:
    """One seed drives splits, initialisation, sampling and shuffling; optionally deterministic kernels.

    The config's types and ranges are checked first: the entry points seed before they build anything, and a seed
    of the wrong type would otherwise stop in numpy with a traceback."""
    check_run_config(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere+ for the fp32 parts of the model


def build_data(cfg: DictConfig, retriever: RetrieverLoader | None = None) -> tuple[Task, RecDataModule]:
    """Source, task and datamodule, every option checked and no file read yet. `retriever` gives a rerank task its
    candidates (`lmrec.serving.candidates.candidate_loader`: it loads another run, so only the entry points that
    import it, lmrec-train and lmrec-eval, pass it; this module is what loading a run imports).

    `check_run_config` runs first (again after `seed_run`, which costs milliseconds), so every entry point that
    builds data (`lmrec-train`, `lmrec-eval`, `lmrec-data`) refuses a value of the wrong type before loggers, the
    trainer, the data or the encoder do any work."""
    check_run_config(cfg)
    source = build_source(cfg.data.source)
    task = build_task(cfg.task, BuildFacts("task", source=source, data=cfg.data))
    task.record_rows(bool(cfg.get("per_user", True)))
    task.attach_retriever(retriever, cfg.paths.get("cache_dir"))
    return task, build_datamodule(cfg.data, source, task)


def encoding_device(trainer_cfg: DictConfig) -> str:
    """Where a frozen encoder encodes the catalogue: the GPU the trainer uses, else the CPU."""
    return "cuda" if trainer_cfg.get("accelerator") == "gpu" and torch.cuda.is_available() else "cpu"
