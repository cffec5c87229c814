"""What a job knows about the sweep it belongs to: whether it is one, the sweep's name, and the job's own choices.

These name the job's W&B run (group = the sweep, job type = the choices that distinguish this job) so the jobs of
one sweep appear together and can be told apart, and the sweep summary lists each job by what it varied.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lmrec.errors import ConfigError

#: W&B rejects longer job types and groups.
WANDB_NAME_MAX = 64


def hydra_config() -> DictConfig | None:
    """The running job's Hydra config, or None outside a Hydra job (tests composing configs, plain scripts)."""
    return HydraConfig.get() if HydraConfig.initialized() else None


def in_multirun() -> bool:
    """True inside a job of `-m`: failures must then mark the job, not end the process."""
    hydra = hydra_config()
    return hydra is not None and hydra.mode == RunMode.MULTIRUN


def sweep_name(hydra: DictConfig, log_dir: str | None = None) -> str:
    """The sweep folder's path under `<log_dir>/multiruns` (e.g. `2026-11-27_19-50-00-123456`), else its name.

    A sweep started with `hydra.sweep.dir=outputs/towers` is called `towers`: the name a user gave it.
    """
    sweep_dir = Path(str(hydra.sweep.dir)).resolve()
    if log_dir:
        try:
            return "_".join(sweep_dir.relative_to(Path(log_dir).resolve() / "multiruns").parts) or sweep_dir.name
        except ValueError:
            pass
    return sweep_dir.name


def swept_keys(hydra: DictConfig) -> set[str]:
    """Keys the sweep varies: sweep syntax on the command line (`a=1,2`, recorded in multirun.yaml by the basic
    sweeper) and the sweeper's `params` (config-defined sweeps and the Optuna search space)."""
    parser = OverridesParser.create()
    keys = {str(k) for k in (OmegaConf.select(hydra, "sweeper.params") or {})}
    master = Path(str(hydra.sweep.dir)) / "multirun.yaml"
    if master.is_file():
        cli = OmegaConf.select(OmegaConf.load(master), "hydra.overrides.task") or []
        keys |= {o.key_or_group for o in parser.parse_overrides(list(cli)) if o.is_sweep_override()}
    return keys


def job_choices(hydra: DictConfig) -> str:
    """`head=mlp,item_tower=text`: this job's values of the swept keys (all its overrides if none are known)."""
    overrides = OverridesParser.create().parse_overrides(list(hydra.overrides.task))
    keys = swept_keys(hydra)
    chosen = [o for o in overrides if o.key_or_group in keys] or overrides
    return ",".join(f"{o.key_or_group.split('/')[-1].split('.')[-1]}={o.get_value_element_as_str()}" for o in chosen)


def fit_wandb_name(text: str) -> str:
    """Shorten to W&B's limit, keeping the name unique with a hash of the full text."""
    if len(text) <= WANDB_NAME_MAX:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{text[: WANDB_NAME_MAX - 9]}~{digest}"


def wandb_group(default: str, log_dir: str | None = None) -> str:
    """Resolver `${lmrec.wandb_group:<default>}`: the sweep's name in a multirun, else the experiment chosen, else
    `default` (the run name)."""
    hydra = hydra_config()
    if hydra is None:
        return default
    if hydra.mode == RunMode.MULTIRUN:
        return fit_wandb_name(sweep_name(hydra, log_dir))
    experiment = OmegaConf.select(hydra, "runtime.choices.experiment")
    return fit_wandb_name(str(experiment)) if experiment else default


def wandb_job_type(default: str) -> str:
    """Resolver `${lmrec.wandb_job_type:<default>}`: the job's swept choices in a multirun, else `default`."""
    hydra = hydra_config()
    if hydra is None or hydra.mode != RunMode.MULTIRUN:
        return default
    return fit_wandb_name(job_choices(hydra)) or default


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which taskset, cgroups and SLURM set), else cpu_count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def job_threads(requested: int | None) -> tuple[int | None, str]:
    """Torch CPU threads for this job, and why: `torch_threads` if set; cores / n_jobs for parallel local jobs;
    torch's own default if OMP_NUM_THREADS is set; else half the usable cores (at least one).

    Why half: torch's default (one thread per core, OpenMP threads that spin while they wait) collapses beside a
    busy neighbour, because every parallel region waits for its slowest thread. On 2 cores, one ranking epoch took
    1.6-1.8 s idle and 7.8-8.5 s (4.4-5.3x) beside a CPU-bound neighbour with torch's 2 threads, against 1.6-2.1 s
    idle and 2.6-3.5 s busy with 1 thread (docs/benchmarks.md, `lmrec-bench run threads`). Two jobs
    each using every core are far slower than two jobs sharing them.
    """
    if requested is not None:
        if isinstance(requested, bool) or int(requested) < 1:
            raise ConfigError(f"torch_threads={requested}; expected a positive number of threads, or null")
        return int(requested), "torch_threads"
    hydra = hydra_config()
    n_jobs = OmegaConf.select(hydra, "launcher.n_jobs") if hydra is not None and in_multirun() else None
    if isinstance(n_jobs, int) and n_jobs > 1:
        return max(1, usable_cores() // n_jobs), f"usable cores / {n_jobs} parallel jobs"
    if os.environ.get("OMP_NUM_THREADS"):
        return None, "OMP_NUM_THREADS is set: torch's default"
    return max(1, usable_cores() // 2), "half the usable cores (robust beside a busy neighbour)"
