"""Build the data side of a run from its config: the source first (cheap, no file read), then the datamodule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

from lmrec.config.instantiate import instantiate_checked
from lmrec.data.datamodule import RecDataModule
from lmrec.data.sources.base import Source
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.tasks.base import Task


def build_source(cfg: DictConfig) -> Source:
    """`data.source`: its options are checked here, before anything else is built."""
    source = instantiate_checked(cfg.data.source)
    if not isinstance(source, Source):
        raise ConfigError(
            f"data.source._target_={cfg.data.source._target_} builds a {type(source).__name__}, not an lmrec Source"
        )
    return source


def build_datamodule(cfg: DictConfig, source: Source, task: Task) -> RecDataModule:
    """The datamodule over `source`, serving `task`'s batches; every data option is checked, nothing is read."""
    datamodule = instantiate_checked(cfg.data, source=source, task=task, _convert_="all")
    if not isinstance(datamodule, RecDataModule):
        raise ConfigError(
            f"data._target_={cfg.data._target_} builds a {type(datamodule).__name__}, not a RecDataModule"
        )
    return datamodule
