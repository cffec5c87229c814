"""Experiment loggers: W&B by default (offline when no credentials), CSV and TensorBoard as alternatives."""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, WandbLogger

from lmrec.config.instantiate import instantiate_checked
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

#: Config keys whose values never reach a logger (substring match, case-insensitive).
SECRET_MARKERS = ("api_key", "apikey", "token", "secret", "password")


def wandb_credentials_available() -> bool:
    """True when W&B could authenticate: an API key in the environment or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators(os.environ.get("WANDB_BASE_URL", "api.wandb.ai").split("//")[-1])
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(auth and auth[2])


def build_loggers(logger_cfg: DictConfig | None) -> list[Logger]:
    """One Lightning logger per entry of the `logger` group; W&B goes offline by itself without credentials."""
    loggers: list[Logger] = []
    for name, cfg in (logger_cfg or {}).items():
        if not isinstance(cfg, DictConfig) or "_target_" not in cfg:
            raise ConfigError(f"logger.{name} has no _target_; see conf/logger/ for examples")
        overrides: dict[str, Any] = {}
        if cfg._target_.endswith("WandbLogger") and cfg.get("offline") is None:
            offline = os.environ.get("WANDB_MODE") == "offline" or not wandb_credentials_available()
            overrides["offline"] = offline
            if offline:
                log.info("W&B: no API key found, logging offline (sync later with the command printed at the end)")
        loggers.append(instantiate_checked(cfg, **overrides))
    return loggers


def redact_secrets(value: Any) -> Any:
    """A copy of a nested config with every secret-looking key's value replaced, so keys never reach W&B."""
    if isinstance(value, dict):
        return {
            k: "***" if any(m in str(k).lower() for m in SECRET_MARKERS) else redact_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_secrets(v) for v in value]
    return value


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
