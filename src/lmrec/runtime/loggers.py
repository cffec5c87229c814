"""Experiment loggers: W&B by default (offline when no credentials), CSV and TensorBoard as alternatives."""

from __future__ import annotations

import logging
import netrc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, WandbLogger

from lmrec.config.instantiate import instantiate_checked
from lmrec.config.secrets import SECRET_MARKERS, redact_override, redact_secrets
from lmrec.errors import ConfigError

__all__ = ["SECRET_MARKERS", "build_loggers", "finish_wandb", "redact_secrets", "wandb_finished_on_failure"]

log = logging.getLogger(__name__)

_SYNC_HINT = "sync later with the command printed at the end"


def wandb_credentials_available(cfg: DictConfig | None = None) -> bool:
    """True when W&B could authenticate: an API key in the environment, in ~/.netrc (what `wandb login` writes),
    or in the logger's own `settings.api_key`."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    if cfg is not None and (cfg.get("settings") or {}).get("api_key"):
        return True
    try:
        auth = netrc.netrc().authenticators(os.environ.get("WANDB_BASE_URL", "api.wandb.ai").split("//")[-1])
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(auth and auth[2])


def is_wandb_entry(cfg: Any) -> bool:
    """Whether a `logger` group entry configures W&B: the one logger that needs a mode, a redacted command line
    and, on resume, the run's recorded identity."""
    return isinstance(cfg, DictConfig) and str(cfg.get("_target_")).endswith("WandbLogger")


def build_loggers(logger_cfg: DictConfig | None) -> list[Logger]:
    """One Lightning logger per entry of the `logger` group; W&B goes offline by itself without credentials."""
    loggers: list[Logger] = []
    for name, cfg in (logger_cfg or {}).items():
        if not isinstance(cfg, DictConfig) or "_target_" not in cfg:
            raise ConfigError(f"logger.{name} has no _target_; see conf/logger/ for examples")
        if not is_wandb_entry(cfg):
            loggers.append(instantiate_checked(cfg))
            continue
        offline, reason = wandb_mode(cfg)
        if reason:
            log.info("W&B: %s", reason)
        chosen = {} if cfg.get("offline") is not None else {"offline": offline}
        logger = instantiate_checked(cfg, _convert_="all", **chosen)  # plain `settings`, `tags` for wandb.init
        with redacted_argv():  # W&B records the command line (the run's metadata, synced with it)
            logger.experiment  # noqa: B018 -- starts the run now, while the recorded command line is the redacted one
        loggers.append(logger)
    return loggers


def wandb_mode(cfg: DictConfig) -> tuple[bool, str | None]:
    """Whether lmrec asks Lightning for an offline W&B run, and why in words (None when it simply goes online)."""
    env_mode = os.environ.get("WANDB_MODE", "")
    has_key = wandb_credentials_available(cfg)
    key_note = "an API key is set" if has_key else "no API key found either"
    if env_mode == "disabled":
        return False, "disabled by WANDB_MODE=disabled: nothing is logged to W&B"  # offline=True would re-enable it
    if cfg.get("offline"):
        return True, f"logging offline because logger.wandb.offline=true ({key_note}; {_SYNC_HINT})"
    if env_mode in ("offline", "dryrun"):
        return True, f"logging offline because WANDB_MODE={env_mode} ({key_note}; {_SYNC_HINT})"
    if cfg.get("offline") is False:
        return False, None if has_key else "logger.wandb.offline=false but no API key found: W&B will ask for one"
    if not has_key:
        return True, f"no API key found, logging offline ({_SYNC_HINT})"
    return False, None


@contextmanager
def redacted_argv() -> Iterator[None]:
    """`sys.argv` with secret overrides redacted while W&B reads it, so its run files never hold a secret; the
    program itself (and DDP ranks started later, which re-run the command line) keep the real one."""
    real = sys.argv
    sys.argv = [real[0], *(redact_override(arg) for arg in real[1:])]
    try:
        yield
    finally:
        sys.argv = real


def finish_wandb(loggers: list[Logger], summary: dict[str, Any]) -> list[str]:
    """Write the run summary, close each W&B run, and return `wandb sync` commands for offline runs."""
    commands = []
    for logger in (lg for lg in loggers if isinstance(lg, WandbLogger)):
        run = logger.experiment
        run.summary.update(summary)
        offline = bool(getattr(run.settings, "_offline", False)) or run.settings.mode == "offline"
        run_dir = Path(run.dir).parent
        run.finish()
        if offline:
            commands.append(f"wandb sync {run_dir}")
    return commands


@contextmanager
def wandb_finished_on_failure() -> Iterator[None]:
    """If the job fails while a W&B run is open, record the error and finish that run as failed (exit code 1).

    Lightning's WandbLogger leaves the run open on an exception; in a multirun the next job in the same process
    would then log into it, and the failed run would never be marked as failed.
    """
    try:
        yield
    except BaseException as err:
        import wandb

        run = wandb.run
        if run is not None:
            run.summary.update({"error": f"{type(err).__name__}: {err}"[:1000]})
            run.finish(exit_code=1)
        raise
