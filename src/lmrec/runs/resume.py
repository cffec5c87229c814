"""Starting, refusing and resuming a run in its folder, so that one folder only ever holds one run.

`lmrec-train resume=<run dir>` continues a run that stopped (killed, pre-empted, out of time) from its
`checkpoints/last.ckpt`, in the same folder, with the same config. The config is not typed again: it is composed
from the overrides the run started with, which `run_state.json` keeps (Hydra's `.hydra/overrides.yaml` is
rewritten by every start in the folder, also by one that is then refused, so it cannot be trusted for this). The
command line is rewritten before Hydra composes (`resume_command_line`); a resume that would change the config is
refused, and so is a folder without a last checkpoint: nothing was trained yet, so a plain re-run (with
`overwrite=true`) is the same and simpler.

A SLURM job that is requeued (pre-empted, or out of time under submitit's `max_num_timeout`) runs its command
again unchanged. SLURM then sets `SLURM_RESTART_COUNT`, and a start in a folder that holds the same config's run
resumes it (`requeued_start`): from `last.ckpt` when there is one, from scratch otherwise. A folder holding a
different config's run is refused as always.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lmrec.atomic import atomic_path, write_json_atomic
from lmrec.config.secrets import redact_override, redact_secrets
from lmrec.errors import ConfigError, RunFolderError
from lmrec.runs.checkpoints import load_checkpoint, prune_stale_checkpoints
from lmrec.runs.folder import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    RUN_CONTROL_KEYS,
    RUN_STATE_FILE,
    _read_json,
    check_fresh_run_folder,
    check_no_foreign_files,
    config_sha256,
    previous_run_files,
)
from lmrec.runs.recorded_overrides import (
    check_recorded_overrides,
    override_key,
    override_value,
    quoted_path,
    with_secrets_given_again,
)
from lmrec.runs.wandb_identity import new_wandb_identity
from lmrec.runtime.distributed import process_rank

log = logging.getLogger(__name__)

LAST_CHECKPOINT = Path(CHECKPOINT_DIR) / "last.ckpt"
#: Hydra options that take a value as the next argument (`-cn train`).
_VALUE_FLAGS = {"-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir", "-c", "--cfg", "-p", "--package"}


def _split_arguments(argv: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra's flags with their values, the overrides) of a command line without the program name."""
    flags: list[str] = []
    overrides: list[str] = []
    expects_value = False
    for arg in argv:
        if expects_value:
            flags.append(arg)
            expects_value = False
        elif arg.startswith("-"):
            flags.append(arg)
            expects_value = arg in _VALUE_FLAGS
        else:
            overrides.append(arg)
    return flags, overrides


def read_run_state(run_dir: Path) -> dict[str, Any] | None:
    """run_state.json: what the run started with (overrides, config fingerprint, W&B identity, threads)."""
    return _read_json(Path(run_dir) / RUN_STATE_FILE)


def resume_command_line(argv: list[str]) -> list[str]:
    """The command line Hydra should compose: `argv` itself, unless it resumes (`resume=<dir>`), which becomes
    the run's saved overrides, `hydra.run.dir=<dir>` and `resume=<dir>`.

    Overrides given beside `resume=` are accepted only when the run already had them (so the command a DDP rank
    is started with, which repeats every override, resumes too); any other would change the config mid-run.
    A plain start into a literal `hydra.run.dir` that holds another run is refused here already, before Hydra
    rewrites that folder's `.hydra/`.
    """
    program, (flags, overrides) = argv[0], _split_arguments(argv[1:])
    resume = [o for o in overrides if override_key(o) == "resume" and override_value(o) not in ("", "null")]
    multirun = any(f in ("-m", "--multirun") for f in flags)
    if not resume:
        check_literal_run_dir(overrides, multirun)
        return argv
    if multirun:
        raise ConfigError("resume= continues one run; resume each job of a sweep with resume=<its job folder>")
    run_dir = Path(override_value(resume[-1]).strip("'\"")).expanduser().resolve()
    state = resume_state(run_dir)
    check_recorded_overrides(state["overrides"], run_dir)
    hydra_keys = ("hydra.", "hydra/")
    task = [o for o in overrides if not override_key(o).startswith(hydra_keys) and override_key(o) != "resume"]
    saved = with_secrets_given_again([str(o) for o in state["overrides"]], task, run_dir)
    changed = [o for o in task if o not in saved]
    if changed:
        raise ConfigError(
            f"resume={run_dir} continues the run with the overrides it started with ({' '.join(saved) or 'none'}); "
            f"{' '.join(changed)} would change it. Start a new run for other settings"
        )
    hydra_args = [o for o in overrides if override_key(o).startswith(hydra_keys) and override_key(o) != "hydra.run.dir"]
    for given in (o for o in overrides if override_key(o) == "hydra.run.dir"):
        if Path(override_value(given).strip("'\"")).expanduser().resolve() != run_dir:
            raise ConfigError(f"resume={run_dir} runs in that folder; {given} names another one")
    folder = quoted_path(run_dir)
    return [program, *flags, *saved, *hydra_args, f"hydra.run.dir={folder}", f"resume={folder}"]


def resume_state(run_dir: Path) -> dict[str, Any]:
    """The run state of a folder that can be resumed; a one-line error saying what to do otherwise."""
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunFolderError(f"resume={run_dir} is not an lmrec run folder (no {CONFIG_FILE})")
    state = read_run_state(run_dir)
    if state is None or not isinstance(state.get("overrides"), list):
        raise RunFolderError(
            f"resume={run_dir}: the folder has no {RUN_STATE_FILE} (the run stopped before it "
            "started training); run it again with overwrite=true"
        )
    if not (run_dir / LAST_CHECKPOINT).is_file():
        rerun = " ".join([*state["overrides"], f"hydra.run.dir={quoted_path(run_dir)}", "overwrite=true"])
        raise RunFolderError(
            f"resume={run_dir}: no {LAST_CHECKPOINT} (the run stopped before its first checkpoint), so there is "
            f"nothing to continue; run it again: lmrec-train {rerun}"
        )
    return state


def check_literal_run_dir(overrides: list[str], multirun: bool) -> None:
    """Refuse, before Hydra writes into it (`.hydra/`, the log), a `hydra.run.dir=<folder>` given as a plain path
    that holds a run (unless overwrite=true), or files lmrec did not write (even then)."""
    given = [o for o in overrides if override_key(o) == "hydra.run.dir"]
    overwrite = any(override_key(o) == "overwrite" and override_value(o).lower() == "true" for o in overrides)
    if multirun or not given or "${" in given[-1] or process_rank() != 0:
        return  # a DDP rank other than zero starts in the folder its rank zero has begun to fill
    if slurm_restart_count():
        return  # a requeued job's own folder: open_run_folder resumes it once the config is composed
    folder = Path(override_value(given[-1]).strip("'\"")).expanduser()
    if previous_run_files(folder):
        check_fresh_run_folder(folder, overwrite=False) if not overwrite else check_no_foreign_files(folder)


def open_run_folder(
    cfg: DictConfig, run_dir: Path, overrides: list[str], threads: int, rank_zero: bool = True
) -> tuple[Path | None, dict[str, Any] | None]:
    """(checkpoint to resume from or None, run state) for a run about to start in `run_dir`.

    A resume checks the folder and its last checkpoint; a new run on rank zero checks that the folder holds no
    other run (or clears it with overwrite=true) and records the run state. Other DDP ranks only read it.
    """
    if cfg.get("resume"):
        if Path(str(cfg.resume)).expanduser().resolve() != Path(run_dir).resolve():
            raise ConfigError(f"resume={cfg.resume} runs in that folder, but this run's folder is {run_dir}")
        return resume_run(cfg, Path(run_dir), rank_zero)
    requeued = requeued_start(cfg, Path(run_dir))
    if requeued == "resume":
        log.info("SLURM requeue %d: resuming this job's run from %s", slurm_restart_count(), LAST_CHECKPOINT)
        return resume_run(cfg, Path(run_dir), rank_zero)
    if not rank_zero:
        return None, read_run_state(run_dir)
    if requeued == "restart":
        log.info("SLURM requeue %d: no checkpoint yet; starting this job's run again", slurm_restart_count())
    return None, start_run(cfg, Path(run_dir), overrides, threads, overwrite=requeued == "restart")


def slurm_restart_count() -> int:
    """How many times SLURM has requeued this job (`SLURM_RESTART_COUNT`; 0 outside SLURM or on a first start)."""
    value = os.environ.get("SLURM_RESTART_COUNT", "").strip()
    return int(value) if value.isdigit() else 0


def requeued_start(cfg: DictConfig, run_dir: Path) -> str | None:
    """ "resume" or "restart" when this is a requeued SLURM job whose folder holds its own run (same config);
    None otherwise (not requeued, a fresh folder, or another config's run, which the usual checks refuse)."""
    if not slurm_restart_count():
        return None
    state = read_run_state(run_dir)
    if not state or state.get("config_sha256") != config_sha256(cfg):
        return None
    return "resume" if (run_dir / LAST_CHECKPOINT).is_file() else "restart"


def start_run(
    cfg: DictConfig, run_dir: Path, overrides: list[str], threads: int, overwrite: bool = False
) -> dict[str, Any]:
    """Check the folder (refuse or clear another run's files) and record the run state; rank zero only.
    `overwrite`: clear this folder's run files even without `overwrite=true` (a requeued job's own attempt)."""
    try:
        check_fresh_run_folder(run_dir, overwrite=overwrite or bool(cfg.get("overwrite")))
    except RunFolderError:
        restore_hydra_files(run_dir)
        raise
    state = {
        # Secrets redacted: this file stays in the folder; a resume asks for them again (with_secrets_given_again).
        "overrides": [redact_override(o) for o in overrides if override_key(o) not in ("resume", "overwrite")],
        "config_sha256": config_sha256(cfg),
        "config": redact_secrets(OmegaConf.to_container(cfg, resolve=False), keep_interpolations=True),
        "wandb": new_wandb_identity(cfg.get("logger")),
        "torch_threads": threads,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumes": 0,
    }
    write_json_atomic(run_dir / RUN_STATE_FILE, state)
    return state


def restore_hydra_files(run_dir: Path) -> None:
    """Put back the `.hydra/config.yaml` and `overrides.yaml` of the run a refused start found in the folder.

    Hydra rewrites them before lmrec can refuse; left so, the folder's records and checkpoints would be read with
    the refused run's config."""
    state = read_run_state(run_dir)
    if not state or "config" not in state:
        return
    with atomic_path(run_dir / CONFIG_FILE) as tmp:
        OmegaConf.save(OmegaConf.create(state["config"]), tmp)
    with atomic_path(run_dir / CONFIG_FILE.parent / "overrides.yaml") as tmp:
        OmegaConf.save(OmegaConf.create(list(state["overrides"])), tmp)


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted((set(old) | set(new)) - (set() if prefix else set(RUN_CONTROL_KEYS)))
        return [k for key in keys for k in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


def resume_run(cfg: DictConfig, run_dir: Path, rank_zero: bool = True) -> tuple[Path, dict[str, Any]]:
    """(the checkpoint to continue from, the run state) after checking that the config is the one the run
    started with and the checkpoint is whole; rank zero then removes what the stopped attempt wrote after it."""
    state = resume_state(run_dir)
    if state.get("config_sha256") != config_sha256(cfg):
        changed = _changed_keys(state.get("config") or {}, OmegaConf.to_container(cfg, resolve=False))
        raise RunFolderError(
            f"resume={run_dir}: the config composed now differs from the one the run started with at "
            f"{', '.join(changed[:4]) or 'some key'} (were files under conf/ or lmrec's defaults changed?); "
            "start a new run instead"
        )
    checkpoint = run_dir / LAST_CHECKPOINT
    payload = load_checkpoint(checkpoint)  # a damaged file is one CheckpointError line, not torch's traceback
    if rank_zero:
        prune_stale_checkpoints(checkpoint.parent, checkpoint, payload)
        write_json_atomic(run_dir / RUN_STATE_FILE, {**state, "resumes": int(state.get("resumes", 0)) + 1})
    log.info("resuming %s from %s (epoch %s)", run_dir, checkpoint, payload.get("epoch"))
    return checkpoint, state
