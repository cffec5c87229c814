"""DDP under Hydra: every rank of a job works in the job's one output folder, and only rank zero talks.

Lightning starts ranks 1..N-1 of a local DDP job by re-running the command line. Under Hydra it re-runs
`sys.argv` with `hydra.run.dir=<the run dir pattern>`, which is wrong in two ways: inside a multirun `sys.argv`
holds `-m` and the sweep, so each rank would start the whole sweep again, and `hydra.run.dir` is not the job's
folder (a multirun job lives under `hydra.sweep.dir`), so ranks would write a second output folder. Here the child
command is instead this job alone: its own overrides, run in the job's output folder, saving no Hydra config.
Each rank logs to its own file there (`train_rank<k>.log`, see `rank_suffix`).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

#: Environment variables that carry a process's global rank, in the order Lightning reads them.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
#: What Lightning's local launcher exports into the launching process for its ranks.
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def process_rank() -> int:
    """This process's rank as the launcher (Lightning, torchrun, SLURM) announced it; 0 when not distributed."""
    for name in RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def on_rank_zero(value: str | None) -> str | None:
    """Resolver `${lmrec.on_rank_zero:<value>}`: the value on rank zero, null elsewhere.

    Used for `hydra.output_subdir`, so that when SLURM starts every rank as a Hydra job (submitit launcher) only
    rank zero writes `.hydra/`, instead of all ranks writing the same files at once.
    """
    return value if process_rank() == 0 else None


def rank_suffix() -> str:
    """Resolver `${lmrec.rank_suffix:}`: "" on rank zero, "_rank<k>" elsewhere; names each rank's log file."""
    rank = process_rank()
    return f"_rank{rank}" if rank else ""


def job_subprocess_command(module: str, local_rank: int) -> tuple[Sequence[str], str]:
    """The command and working directory that start local rank `local_rank` of this Hydra job of `module`.

    The entry point is named rather than read from `sys.argv`/`__main__`: in a joblib worker those are the worker's.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hydra = HydraConfig.get()
    command = [sys.executable, "-m", module, f"--config-name={hydra.job.config_name}"]
    command += [f"--config-dir={s.path}" for s in hydra.runtime.config_sources if s.provider == "command-line"]
    command += list(hydra.overrides.task)
    command += [
        f"hydra.run.dir={hydra.runtime.output_dir}",
        "hydra.output_subdir=null",
        "hydra.mode=RUN",
    ]
    return command, get_original_cwd()


def use_job_command_for_ddp_ranks(module: str) -> None:
    """Make Lightning start the local DDP ranks of this job of `module` (e.g. lmrec.cli.train) with
    `job_subprocess_command` (see the module docstring)."""
    from pytorch_lightning.strategies.launchers import subprocess_script

    if not hasattr(subprocess_script, "_hydra_subprocess_cmd"):  # a Lightning upgrade moved it: fail loudly
        raise RuntimeError("pytorch_lightning's subprocess launcher no longer has _hydra_subprocess_cmd; update lmrec")
    subprocess_script._hydra_subprocess_cmd = functools.partial(job_subprocess_command, module)


def quiet_other_ranks() -> None:
    """On ranks other than zero, the console shows warnings and errors only; each rank's log file keeps all."""
    if process_rank() == 0:
        return
    named = (v for v in logging.root.manager.loggerDict.values() if isinstance(v, logging.Logger))
    loggers = [logging.getLogger(), *named]
    for logger in loggers:  # the root's console handler, and the ones Lightning attaches to its own loggers
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.setLevel(logging.WARNING)


@contextmanager
def distributed_job() -> Iterator[None]:
    """Leave no DDP state behind when the job ends, so the next job of a sweep in this process starts its own.

    Lightning keeps the process group and the launch variables (MASTER_PORT, WORLD_SIZE, ...) after fit/test; a
    second DDP job in the same process would reuse a group whose other ranks have exited and fail.
    """
    before = {name: os.environ.get(name) for name in LAUNCH_VARIABLES}
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
