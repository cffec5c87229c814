"""A run folder loaded for use, with lmrec-eval's safety: a folder is data, never code.

The saved config is read with `rebuild_config` (narrower allow-list; its callbacks and loggers are not rebuilt), the
checkpoint with `weights_only=True`, and the data is checked against the fingerprint the run recorded, so the ids a
recommendation names are the ids the run trained on. A frozen run's text vectors come from its checkpoint: no
encoder is loaded unless a request asks to encode a new text.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from lmrec.cli.components import build_data, encoding_device
from lmrec.config.resolvers import register_resolvers
from lmrec.data.datamodule import RecDataModule
from lmrec.model.builders import model_builder
from lmrec.runs.checkpoints import load_checkpoint, restore_model
from lmrec.runs.folder import check_records_match_config, check_same_data, locate_run, rebuild_config
from lmrec.tasks.base import Task


@dataclass
class LoadedRun:
    """What a run is made of once loaded: its config, data, task, and the model in eval mode."""

    folder: Path
    checkpoint: Path
    cfg: DictConfig
    datamodule: RecDataModule
    task: Task
    model: pl.LightningModule


def load_run(
    run: str | Path,
    checkpoint: str = "best",
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> LoadedRun:
    """The run at `run` (a run folder, or a .ckpt inside one), on the CPU; `data_dir` where its data moved to."""
    register_resolvers()
    folder, ckpt = locate_run(run, checkpoint)
    check_records_match_config(folder)
    paths = {"output_dir": tempfile.gettempdir()}
    if cache_dir is not None:
        paths["cache_dir"] = str(cache_dir)
    if data_dir is not None:
        paths["data_dir"] = str(data_dir)
    cfg = rebuild_config(folder, paths)  # nothing is written: the trainer never runs
    with open_dict(cfg):
        cfg.trainer.accelerator, cfg.trainer.devices = "cpu", 1
        cfg.per_user = False
    task, datamodule = build_data(cfg)
    payload = load_checkpoint(ckpt)  # before the data is read: a damaged file fails in a second
    check_same_data(folder, datamodule.prepare().key)
    model = model_builder(cfg.model).build(
        datamodule, task, encoding_device(cfg.trainer), str(cfg.task.monitor), payload["state_dict"]
    )
    restore_model(model, ckpt, payload)
    model.eval()
    return LoadedRun(folder, ckpt, cfg, datamodule, task, model)


def describe(loaded: LoadedRun) -> dict[str, Any]:
    """A short description of the loaded run (the service's /health and the CLI's header)."""
    data = loaded.datamodule.prepare()
    return {
        "run": str(loaded.folder),
        "checkpoint": loaded.checkpoint.name,
        "model": str(OmegaConf.select(loaded.cfg, "model.name", default="")),
        "task": str(OmegaConf.select(loaded.cfg, "task.name", default="")),
        "users": data.num_users,
        "items": data.num_items,
        "device": str(next((p.device for p in loaded.model.parameters()), torch.device("cpu"))),
    }
