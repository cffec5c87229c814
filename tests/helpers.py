"""Composing and running lmrec configs inside a test process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from lmrec.config import CONFIG_DIR


def compose_train(overrides: list[str], output_dir: Path, cache_dir: Path) -> DictConfig:
    """The train config with the given overrides and paths pointing at test folders (no Hydra run dir)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.cache_dir = str(cache_dir)
    return cfg


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
