"""Build the configured task, checked against its monitored metric so a typo fails before any data or model work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from lmrec.config.instantiate import instantiate_with
from lmrec.data.sources.base import Source
from lmrec.errors import ConfigError
from lmrec.tasks.base import Task


def task_inputs(source: Source) -> dict[str, Callable[[], Any]]:
    """What a task may ask for from the data before it is read: the source's rating scale."""
    return {"rating_scale": lambda: source.rating_scale}


def build_task(cfg: DictConfig, inputs: dict[str, Callable[[], Any]] | None = None) -> Task:
    """`cfg.task`, given the data-derived arguments it names (`inputs`, e.g. the source's `rating_scale`)."""
    task = instantiate_with(cfg.task, inputs or {}, key="task")
    if not isinstance(task, Task):
        raise ConfigError(f"task._target_={cfg.task._target_} builds a {type(task).__name__}, not an lmrec Task")
    monitor = str(cfg.task.monitor)
    valid = [f"val/{name}" for name in task.metric_names()]
    if monitor not in valid:
        raise ConfigError(
            f"task.monitor={monitor} is not a metric this task computes; choose one of {', '.join(valid)}"
        )
    return task
