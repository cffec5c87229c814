"""Composing and running lmrec configs inside a test process."""

from __future__ import annotations

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
