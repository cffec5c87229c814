"""Where the configs live, and the resolvers they use.

`${lmrec.project_root:}` lets the default paths point at the checkout (its data/, outputs/, .cache/) whatever
the working directory, so `lmrec-train` behaves the same when started from anywhere. `${lmrec.wandb_group:…}` and
`${lmrec.wandb_job_type:…}` name a sweep job's W&B run after its sweep and its choices (see lmrec.sweep);
`${lmrec.on_rank_zero:…}` keeps a value on rank zero only and `${lmrec.rank_suffix:}` names per-rank log files
(see lmrec.distributed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lmrec.distributed import on_rank_zero, rank_suffix
from lmrec.sweep import wandb_group, wandb_job_type

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = str(PROJECT_ROOT / "conf")


def project_root() -> str:
    return os.environ.get("LMREC_ROOT") or str(PROJECT_ROOT)


for _name, _resolver in (
    ("lmrec.project_root", project_root),
    ("lmrec.wandb_group", wandb_group),
    ("lmrec.wandb_job_type", wandb_job_type),
    ("lmrec.on_rank_zero", on_rank_zero),
    ("lmrec.rank_suffix", rank_suffix),
):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)


def instantiate_checked(cfg: Any, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but errors caused by the config come out as one-line InputErrors.

    Hydra wraps every exception from a constructor in InstantiationException. Ours are unwrapped as they are; a
    ValueError, TypeError or misconfiguration error from a third-party target (Trainer, logger, callback,
    optimizer) means its arguments were wrong, so it becomes a ConfigError naming the target. Anything else
    keeps its traceback.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    from lmrec.errors import ConfigError, InputError

    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, InputError):
            raise cause from None
        target = str(cfg.get("_target_", "config")) if hasattr(cfg, "get") else "config"
        if not target.startswith("lmrec.") and isinstance(cause, ValueError | TypeError | MisconfigurationException):
            raise ConfigError(f"{target}: {cause}") from None
        raise
