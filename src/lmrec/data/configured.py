"""The data side of a run as its config sections describe it: the source (cheap, no file read), then the
datamodule; and the data-derived constructor arguments a task may name before any file is read
(`lmrec.config.arguments`; those read from the loaded data, such as `history`, are the datamodule's own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from lmrec.config.arguments import BuildFacts, provides
from lmrec.config.instantiate import instantiate_checked
from lmrec.data.datamodule import RecDataModule
from lmrec.data.options import SplitOptions, option_group
from lmrec.data.sources.base import Source
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.tasks.base import Task


def build_source(source_cfg: DictConfig) -> Source:
    """`data.source`: its options are checked here, before anything else is built; no file is read."""
    source = instantiate_checked(source_cfg)
    if not isinstance(source, Source):
        raise ConfigError(
            f"data.source._target_={source_cfg._target_} builds a {type(source).__name__}, not an lmrec Source"
        )
    return source


def build_datamodule(data_cfg: DictConfig, source: Source, task: Task) -> RecDataModule:
    """The datamodule over `source`, serving `task`'s batches; every data option is checked, nothing is read."""
    datamodule = instantiate_checked(data_cfg, source=source, task=task, _convert_="all")
    if not isinstance(datamodule, RecDataModule):
        built = type(datamodule).__name__
        raise ConfigError(f"data._target_={data_cfg._target_} builds a {built}, not a RecDataModule")
    return datamodule


# -- data-derived constructor arguments (lmrec.config.arguments) ---------------------------------------------------
@provides("split_strategy")
def _split_strategy(facts: BuildFacts) -> str:
    """`data.split.strategy` (a task that needs the source's own split says so before any file is read)."""
    return option_group(SplitOptions, _plain(facts.data.get("split")), "split").strategy


@provides("drop_invalid")
def _drop_invalid(facts: BuildFacts) -> bool:
    """`data.drop_invalid`: a task that reads files of its own (impression logs) treats bad rows as the data does."""
    return bool(facts.data.get("drop_invalid", False))


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
