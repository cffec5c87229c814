"""Checks on encoder options that run before any model is loaded, so a typo fails in a second, not after minutes."""

from __future__ import annotations

import json
from pathlib import Path

from lmrec.errors import ConfigError

POOLINGS = ("mean", "cls")


def check_encoder_options(pooling: str, max_length: int) -> None:
    if pooling not in POOLINGS:
        raise ConfigError(f"model.encoder.pooling={pooling!r}; expected one of {POOLINGS}")
    if int(max_length) < 2:
        raise ConfigError(f"model.encoder.max_length={max_length}; expected at least 2")


def encoder_width(model_dir: Path) -> int:
    """The encoder's output width from its config.json, without importing transformers."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    for key in ("hidden_size", "d_model", "dim"):
        if isinstance(config.get(key), int):
            return int(config[key])
    from transformers import AutoConfig  # unusual config layouts: let transformers resolve the alias

    return int(AutoConfig.from_pretrained(model_dir).hidden_size)
