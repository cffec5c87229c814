"""Build the configured task, checked against its monitored metric so a typo fails before any data or model work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lmrec.config.instantiate import instantiate_with
from lmrec.data.impressions import ImpressionLog
from lmrec.data.sources.base import Source
from lmrec.errors import ConfigError
from lmrec.tasks.base import Task


def task_inputs(source: Source) -> dict[str, Callable[[], Any]]:
    """What a task may ask for from the data before it is read, by constructor argument name:

    - `rating_scale`: the source's rating range;
    - `impressions`: the source itself when it offers impression logs (`impressions(split)`, read when a split is
      first evaluated, not now); a source without them is a ConfigError naming it.
    """
    return {"rating_scale": lambda: source.rating_scale, "impressions": lambda: _impression_log(source)}


def _impression_log(source: Source) -> ImpressionLog:
    if not isinstance(source, ImpressionLog):
        raise ConfigError(
            f"this task evaluates impressions, but data.source ({source.name}) has none; use a source that offers "
            "them (e.g. data=mind_small)"
        )
    return source


def config_inputs(cfg: DictConfig) -> dict[str, Callable[[], Any]]:
    """Data options a task may need: `split_strategy` (`data.split.strategy`), `drop_invalid` (`data.drop_invalid`:
    a task that reads files of its own, such as impression logs, treats bad rows as the datamodule does)."""
    return {
        "split_strategy": lambda: str(OmegaConf.select(cfg, "data.split.strategy", default="random")),
        "drop_invalid": lambda: bool(OmegaConf.select(cfg, "data.drop_invalid", default=False)),
    }


def build_task(cfg: DictConfig, inputs: dict[str, Callable[[], Any]] | None = None) -> Task:
    """`cfg.task`, given the data-derived arguments it names (`inputs`, e.g. the source's `rating_scale`, and
    `config_inputs`)."""
    task = instantiate_with(cfg.task, {**config_inputs(cfg), **(inputs or {})}, key="task")
    if not isinstance(task, Task):
        raise ConfigError(f"task._target_={cfg.task._target_} builds a {type(task).__name__}, not an lmrec Task")
    monitor = str(cfg.task.monitor)
    valid = [f"val/{name}" for name in task.metric_names("val")]
    if monitor not in valid:
        raise ConfigError(
            f"task.monitor={monitor} is not a metric this task computes; choose one of {', '.join(valid)}"
        )
    return task
