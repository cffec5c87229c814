"""The number a hyperparameter search optimises: `optimized_metric`, one of the metrics a run writes.

Optuna (and any sweeper that reads the job's return value) needs one float per job. Validation-based selection is
the default (`best/<task.monitor>`): choosing hyperparameters on test metrics would leak the test set.
"""

from __future__ import annotations

from pathlib import Path

from lmrec.errors import ConfigError
from lmrec.runs.folder import read_metrics
from lmrec.tasks.base import Task


def objective_names(task: Task, monitor: str) -> list[str]:
    """Metrics a run of this task writes to metrics.json, hence the valid values of `optimized_metric`."""
    return [f"best/{monitor}", *(f"test/{name}" for name in task.metric_names("test"))]


def check_optimized_metric(name: str | None, task: Task, monitor: str) -> None:
    """Fail before training when the search would optimise a metric the run never produces."""
    if name is None:
        return
    valid = objective_names(task, monitor)
    if name not in valid:
        raise ConfigError(f"optimized_metric={name} is not a metric this run writes; choose one of {', '.join(valid)}")


def objective_value(name: str, run_dir: Path) -> float | None:
    """The optimised metric from the run's metrics.json (written by rank zero; other ranks get None)."""
    metrics = read_metrics(run_dir)
    if metrics is None:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric={name} was not written to {run_dir}/metrics.json (test=false, or no "
            "checkpoint callback to record best/…?); the search needs it from every trial"
        )
    return float(metrics[name])
