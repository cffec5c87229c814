"""Composing and running lmrec configs inside a test process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, open_dict

from lmrec.cli.components import build_data
from lmrec.config.compose import compose_config
from lmrec.data.datamodule import RecDataModule
from lmrec.serving.candidates import candidate_loader


def compose_train(overrides: list[str], output_dir: Path, cache_dir: Path) -> DictConfig:
    """The train config with the given overrides and paths pointing at test folders (no Hydra run dir)."""
    cfg = compose_config("train", overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.cache_dir = str(cache_dir)
    return cfg


def prepared_data(cfg: DictConfig) -> RecDataModule:
    """The datamodule of `cfg` with its data loaded (its task attached as `.task`)."""
    _, datamodule = build_data(cfg, candidate_loader)
    datamodule.prepare()
    return datamodule


def run_cli(script: str, args: list[str], home: Path, ok: bool = True) -> subprocess.CompletedProcess:
    """Run an installed console script as a user would: W&B offline (no key, empty HOME), started outside the repo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", WANDB_SILENT="true")
    result = subprocess.run(
        [str(Path(sys.executable).parent / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=600,
    )
    if ok:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def build_model(cfg: DictConfig, datamodule: RecDataModule, task, **options):  # -> a LightningModule
    """The model the builder `cfg.model` names builds over `datamodule` (as `lmrec-train` does)."""
    from lmrec.model.builders import model_builder

    return model_builder(cfg.model).build(datamodule, task, **options)


def built_model(cfg: DictConfig):  # -> tuple[RecommenderModule, RecDataModule]
    """The model and the loaded datamodule `lmrec-train` would build for `cfg` (nothing trained)."""
    datamodule = prepared_data(cfg)
    return build_model(cfg, datamodule, datamodule.task), datamodule
