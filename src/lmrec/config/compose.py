"""Composing lmrec's configs outside a Hydra entry point: tests, notebooks and benchmark scripts."""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from lmrec.config.location import CONFIG_PACKAGE
from lmrec.config.resolvers import register_resolvers


def compose_config(name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    """The config `lmrec-<name>` would run with these overrides (no Hydra run folder, no `hydra:` values)."""
    register_resolvers()
    with initialize_config_module(config_module=CONFIG_PACKAGE, version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))
