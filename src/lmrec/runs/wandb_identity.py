"""Which W&B run a run logs into: an id chosen when the run starts and recorded in its run state, so a resumed run
(or a requeued SLURM job) logs into the same W&B run, with the group and job type it started with."""

from __future__ import annotations

import secrets
import string
from typing import Any

from omegaconf import DictConfig, open_dict

from lmrec.runtime.loggers import is_wandb_entry


def _wandb_entries(logger_cfg: DictConfig | None) -> list[DictConfig]:
    return [entry for entry in (logger_cfg or {}).values() if is_wandb_entry(entry)]


def new_wandb_identity(logger_cfg: DictConfig | None) -> dict[str, Any] | None:
    """The identity to record for a new run: the configured W&B id or a fresh random one; None without W&B."""
    entries = _wandb_entries(logger_cfg)
    if not entries:
        return None
    chosen = entries[0]
    run_id = chosen.get("id") or "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    return {"id": str(run_id), "group": chosen.get("group"), "job_type": chosen.get("job_type")}


def use_run_identity(logger_cfg: DictConfig | None, state: dict[str, Any] | None) -> None:
    """Point the W&B logger at the run's recorded id (`resume="allow"`), so a resumed run logs into the same W&B
    run, with the group and job type it started with (a sweep job resumed alone would otherwise get a single
    run's group)."""
    identity = (state or {}).get("wandb")
    if not identity:
        return
    for entry in _wandb_entries(logger_cfg):
        with open_dict(entry):
            entry.id, entry.resume = identity["id"], "allow"
            for key in ("group", "job_type"):
                if identity.get(key) is not None:
                    entry[key] = identity[key]
