"""Finding things in a run folder: its saved config, its checkpoints, what its run.json recorded.

A run folder may come from someone else, so it is read as data: the config is parsed as YAML (never executed),
checkpoints are loaded with weights_only=True (`lmrec.runs.checkpoints`), and a path it records must lie inside the
folder (`inside`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from lmrec.config.allowlist import check_targets
from lmrec.config.secrets import redact_secrets
from lmrec.errors import MissingInputError, RunFolderError

CONFIG_FILE = Path(".hydra") / "config.yaml"
OVERRIDES_FILE = CONFIG_FILE.parent / "overrides.yaml"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
#: What `lmrec-eval` writes into its own output folder (its `metrics_file` option).
EVAL_METRICS_FILE = "eval_metrics.json"
#: A sweep job's status row, written when the job ends (`lmrec.sweeps.summary`).
JOB_STATUS_FILE = "job_status.json"
#: Written when a run starts: what a resume needs (`lmrec.runs.resume`).
RUN_STATE_FILE = "run_state.json"
CHECKPOINT_DIR = "checkpoints"
#: Everything a run of lmrec (and its loggers) may write into its folder, besides Hydra's `.hydra/` and log files.
RUN_ARTEFACTS = (
    CHECKPOINT_DIR,
    METRICS_FILE,
    RUN_FILE,
    RUN_STATE_FILE,
    JOB_STATUS_FILE,
    EVAL_METRICS_FILE,
    "config_resolved.yaml",
    "data_card.json",
    "data_card.md",
    "split",
    "per_user",
    "compare",
    "wandb",
    "csv",
    "tensorboard",
    "lightning_logs",
)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(payload, dict):
        raise RunFolderError(f"{path} does not hold a JSON object")
    return payload


def read_run_info(run_dir: Path) -> dict[str, Any] | None:
    """run.json of a run folder, or None when the run never wrote one (it crashed or is still training)."""
    return _read_json(Path(run_dir) / RUN_FILE)


def read_metrics(run_dir: Path, name: str = METRICS_FILE) -> dict[str, Any] | None:
    """metrics.json of a run folder (or another metrics file in it), or None when it was never written."""
    return _read_json(Path(run_dir) / name)


def read_job_status(job_dir: Path) -> dict[str, Any] | None:
    """The row a sweep job's `job_status.json` holds (written by the sweep summary callback), or None."""
    return _read_json(Path(job_dir) / JOB_STATUS_FILE)


def read_recorded_overrides(run_dir: Path) -> list[str]:
    """The command-line overrides Hydra recorded for the run (as written: redact before showing them); [] without
    the file. A folder from elsewhere is data: its YAML is parsed safely and must be a list of strings."""
    path = Path(run_dir) / OVERRIDES_FILE
    if not path.is_file():
        return []
    try:
        overrides = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path} is not valid YAML ({err})") from None
    if overrides is not None and not (isinstance(overrides, list) and all(isinstance(o, str) for o in overrides)):
        raise RunFolderError(f"{path} does not hold a list of overrides")
    return list(overrides or [])


def read_config(run_dir: Path) -> DictConfig | None:
    """The saved config, or None for a folder without one (a job that failed before Hydra wrote it)."""
    return saved_config(run_dir) if (Path(run_dir) / CONFIG_FILE).is_file() else None


def locate_run(run: str | Path, checkpoint: str) -> tuple[Path, Path]:
    """(run dir, checkpoint file) from a run folder or a checkpoint path inside one."""
    path = Path(run).expanduser()
    if path.is_file():
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        if not (run_dir / CONFIG_FILE).is_file():
            raise MissingInputError(f"{path} is not inside an lmrec run directory (no ../{CONFIG_FILE})")
        return run_dir, path
    if not (path / CONFIG_FILE).is_file():
        raise MissingInputError(f"run={path} is not an lmrec run directory (no {CONFIG_FILE})")
    if checkpoint == "last":
        ckpt = path / "checkpoints" / "last.ckpt"
    elif checkpoint == "best":
        info = read_run_info(path)
        if info is None:
            raise MissingInputError(
                f"{path} has no {RUN_FILE}: the run did not finish, so no best checkpoint was recorded; "
                "pass checkpoint=last or a .ckpt path"
            )
        if not info.get("checkpoint"):
            raise MissingInputError(
                f"{path / RUN_FILE} records no best checkpoint; pass checkpoint=last or a .ckpt path"
            )
        ckpt = inside(path, str(info["checkpoint"]), f"{path / RUN_FILE} records checkpoint")
    else:
        ckpt = path / checkpoint
    if not ckpt.is_file():
        raise MissingInputError(f"checkpoint {ckpt} does not exist")
    return path, ckpt


def inside(run_dir: Path, recorded: str, what: str) -> Path:
    """A path a run folder's own files name, refused unless it lies inside the folder: a folder from elsewhere
    must not point lmrec at files outside it."""
    target = (Path(run_dir) / recorded).resolve()
    if not target.is_relative_to(Path(run_dir).resolve()):
        raise RunFolderError(f"{what} {recorded!r}, which lies outside the run folder {run_dir}; refusing it")
    return target


def saved_config(run_dir: Path) -> DictConfig:
    """The config the run was composed with (`.hydra/config.yaml`), unresolved."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        cfg = OmegaConf.load(path)
    except Exception as err:  # a damaged YAML file is bad input, not a bug
        raise RunFolderError(f"{path} is not a readable config ({type(err).__name__}: {err})") from None
    if not isinstance(cfg, DictConfig):
        raise RunFolderError(f"{path} does not hold a config mapping")
    if "data" in cfg and "source" not in cfg.data:
        raise RunFolderError(
            f"{path} was written by an lmrec from before data sources (data.source); re-train the run, or add a "
            "data.source section to its config as conf/data/movielens_small.yaml has one"
        )
    return cfg


#: Sections of a saved config that re-testing or exporting a run never builds: the invocation's own logger is used,
#: and an evaluation runs no callbacks.
NOT_REBUILT = ("callbacks", "logger")


def rebuild_config(run_dir: Path, paths: dict | None = None) -> DictConfig:
    """The saved config of a run about to be rebuilt (`lmrec-eval`, `lmrec-export`, `lmrec.serving`), as data: the
    sections a rebuild never instantiates left out, and every `_target_` left checked against the narrower
    allow-list of run folders (no Lightning profiler, plugin, strategy, logger or callback object), before anything
    is built. `paths` replaces entries of `paths` first (outside a Hydra app, `${hydra:...}` cannot resolve)."""
    cfg = saved_config(run_dir)
    with open_dict(cfg):
        for section in NOT_REBUILT:
            cfg.pop(section, None)
        for key, value in (paths or {}).items():
            cfg.paths[key] = value
    check_targets(cfg, from_folder=True)
    return cfg


#: Options that say how a run is started, not what it computes: left out of the config's fingerprint.
RUN_CONTROL_KEYS = ("resume", "overwrite")


def config_sha256(cfg: DictConfig) -> str:
    """Fingerprint of a run's config as Hydra saves it (unresolved, so the same whether the job ran alone or in
    a sweep), without the run-control options: run.json records it, and lmrec-eval compares it with
    `.hydra/config.yaml` to refuse records that belong to another config."""
    content = OmegaConf.to_container(cfg, resolve=False)
    content = {k: v for k, v in content.items() if k not in RUN_CONTROL_KEYS and k != "hydra"}
    # Secrets redacted, as in the saved `.hydra/config.yaml` it is compared with (lmrec.runtime.redaction).
    content = redact_secrets(content, keep_interpolations=True)
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def check_records_match_config(run_dir: Path) -> None:
    """Refuse a run.json written for another config than the folder's `.hydra/config.yaml` (the folder was reused
    by a run with other settings, which rewrote `.hydra/` but not the earlier run's records)."""
    info = read_run_info(run_dir) or {}
    recorded = info.get("config_sha256")
    if recorded and recorded != config_sha256(saved_config(run_dir)):
        raise RunFolderError(
            f"{Path(run_dir) / RUN_FILE} and its checkpoints were written for another config than "
            f"{Path(run_dir) / CONFIG_FILE} (the folder was reused with other settings); re-train the run"
        )


def check_same_data(run_dir: Path, key: str) -> None:
    """Refuse to evaluate a run on data other than the data it trained on (fingerprints from run.json)."""
    info = read_run_info(run_dir) or {}
    recorded = info.get("data_key")
    if recorded and recorded != key:
        raise RunFolderError(
            f"the data this evaluation loaded (fingerprint {key}) differs from the data the run trained on "
            f"({recorded}, see {Path(run_dir) / RUN_FILE}); restore the run's data files or point paths.data_dir "
            "at them"
        )


def _written_by_hydra(path: Path) -> bool:
    """Hydra's own files: `.hydra/` and the job's log (train.log, train_rank1.log), written before lmrec runs."""
    return path.name == ".hydra" or (path.is_file() and path.suffix == ".log")


def _atomic_leftover(path: Path) -> bool:
    """A temporary file `lmrec.atomic` writes beside its target, left behind by a process killed mid-write."""
    return path.is_file() and path.name.startswith(".") and path.name.endswith(".tmp")


def previous_run_files(run_dir: Path) -> list[Path]:
    """What an earlier run left in `run_dir` (Hydra's files do not count), sorted by name."""
    folder = Path(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not _written_by_hydra(p))


def check_no_foreign_files(run_dir: Path) -> None:
    """Refuse a run folder holding files lmrec did not write: no run starts there, with or without overwrite=true."""
    foreign = [p.name for p in previous_run_files(run_dir) if p.name not in RUN_ARTEFACTS and not _atomic_leftover(p)]
    if foreign:
        raise RunFolderError(
            f"run folder {run_dir} holds files lmrec did not write ({', '.join(foreign[:4])}); "
            "choose another hydra.run.dir"
        )


def check_fresh_run_folder(run_dir: Path, overwrite: bool) -> None:
    """Refuse to start a run in a folder that holds another run's files, or clear them with `overwrite=true`.

    Results of two runs in one folder cannot be told apart (which `last.ckpt`, which `metrics.json` belongs to
    the config in `.hydra/`?). Only files lmrec writes are ever deleted: a folder that holds anything else is
    refused even with `overwrite=true`, so a mistyped `hydra.run.dir` cannot wipe someone's files.
    """
    found = previous_run_files(run_dir)
    if not found:
        return
    names = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
    check_no_foreign_files(run_dir)
    if not overwrite:
        raise RunFolderError(
            f"run folder {run_dir} already holds a run ({names}); continue it with `lmrec-train resume={run_dir}`, "
            "start over with overwrite=true, or choose another hydra.run.dir"
        )
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
