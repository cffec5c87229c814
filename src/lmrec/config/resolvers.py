"""The `${lmrec.*:}` resolvers the configs use; registered by every entry point before Hydra composes.

`project_root` and `bundled_data` place outputs, caches and the bundled data (see `lmrec.config.location`);
`wandb_group` / `wandb_job_type` name a sweep job's W&B run after its sweep and choices (`lmrec.sweeps.context`);
`on_rank_zero` and `rank_suffix` keep `.hydra/` on rank zero and name per-rank log files
(`lmrec.runtime.distributed`); `metric_mode` gives a metric's direction (`lmrec.tasks.directions`), so
checkpointing, early stopping and Optuna follow the monitored metric without a hand-set mode.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from lmrec.config.location import bundled_data, project_root
from lmrec.runtime.distributed import on_rank_zero, rank_suffix
from lmrec.sweeps.context import wandb_group, wandb_job_type
from lmrec.tasks.directions import metric_mode

RESOLVERS = {
    "lmrec.project_root": project_root,
    "lmrec.bundled_data": bundled_data,
    "lmrec.wandb_group": wandb_group,
    "lmrec.wandb_job_type": wandb_job_type,
    "lmrec.on_rank_zero": on_rank_zero,
    "lmrec.rank_suffix": rank_suffix,
    "lmrec.metric_mode": metric_mode,
}


def register_resolvers() -> None:
    """Idempotent: entry points, tests and scripts may all call it."""
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
