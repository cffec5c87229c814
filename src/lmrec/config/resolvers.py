"""The `${lmrec.*:}` resolvers the configs use; registered by every entry point before Hydra composes.

`project_root` and `bundled_data` place outputs, caches and the bundled data (see `lmrec.config.location`);
`wandb_group` / `wandb_job_type` name a sweep job's W&B run after its sweep and choices (`lmrec.sweeps.context`);
`on_rank_zero` and `rank_suffix` keep `.hydra/` on rank zero and name per-rank log files
(`lmrec.runtime.distributed`); `metric_mode` gives a metric's direction as the task declares it
(`Task.metric_mode`), so checkpointing, early stopping and Optuna follow the monitored metric without a hand-set
mode; `config_groups` lists the choices `--help` shows (`lmrec.config.help`); `fold_validation` gives
`task.fold_validation`'s default for the split strategy (`lmrec.tasks.test_input`).
"""

from __future__ import annotations

from omegaconf import OmegaConf

from lmrec.config.allowlist import check_target
from lmrec.config.help import config_groups
from lmrec.config.location import bundled_data, project_root
from lmrec.errors import ConfigError
from lmrec.runtime.distributed import on_rank_zero, rank_suffix
from lmrec.sweeps.context import wandb_group, wandb_job_type
from lmrec.tasks.test_input import fold_validation_default


def metric_mode(task_target: str, metric: str) -> str:
    """`min` or `max` for `metric`, as the task class `task_target` declares (`Task.metric_mode`). The class is
    imported through the allow-list, as everything a config names."""
    task = check_target(task_target, "task")
    mode = getattr(task, "metric_mode", None)
    if mode is None:
        raise ConfigError(f"task._target_={task_target} declares no metric_mode; is it an lmrec Task?")
    return str(mode(metric))


RESOLVERS = {
    "lmrec.project_root": project_root,
    "lmrec.bundled_data": bundled_data,
    "lmrec.wandb_group": wandb_group,
    "lmrec.wandb_job_type": wandb_job_type,
    "lmrec.on_rank_zero": on_rank_zero,
    "lmrec.rank_suffix": rank_suffix,
    "lmrec.metric_mode": metric_mode,
    "lmrec.config_groups": config_groups,
    "lmrec.fold_validation": fold_validation_default,
}


def register_resolvers() -> None:
    """Idempotent: entry points, tests and scripts may all call it."""
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
