"""Secrets out of Hydra's saved files and every log line: a Hydra callback and a logging filter.

Hydra writes `.hydra/config.yaml`, `hydra.yaml` and `overrides.yaml` with the command line as typed, so a key
passed as `'+logger.wandb.settings={api_key:...}'` would sit in the run folder in plain text. Hydra writes them
after it configures the job's logging and before it calls the callbacks' `on_job_start` (hydra-core 1.3,
`hydra.core.utils.run_job`), so `RedactSecrets.on_job_start` rewrites them before the job itself runs; a sweep's
`multirun.yaml` (written before the first job starts) is rewritten by each job, and the sweeper's result file at
the end. The program keeps the real values: only the files change. `RedactingFilter` is attached to Hydra's log
handlers (`conf/hydra/default.yaml`), so `train.log`, the console, and the W&B copy of the console, never show one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lmrec.atomic import atomic_path
from lmrec.config.secrets import redact_override, redact_secrets, redact_text, remember_secrets, secret_values

log = logging.getLogger(__name__)

#: What Hydra writes into a job's output subfolder, and a sweep's own files.
JOB_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
SWEEP_FILES = ("multirun.yaml", "optimization_results.yaml")


class RedactingFilter(logging.Filter):
    """Replaces secrets in each record (message and traceback) before a handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        return True


def override_secrets(overrides: list[str]) -> set[str]:
    """The secret values typed on the command line: `a.token=x` gives x, `a={api_key:x}` gives x."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override, Sweep

    found: set[str] = set()
    parser = OverridesParser.create()
    for text in overrides:
        try:
            override = parser.parse_override(text)
        except Exception:  # Hydra parsed it already; nothing to learn from one it did not
            continue
        if override.value_type is None or isinstance(override._value, Sweep):
            continue
        value = Override._convert_value(override._value)
        found |= secret_values({override.key_or_group.split(".")[-1]: value})
    return found


def config_secrets(config: DictConfig) -> set[str]:
    """Secret values of a composed config (resolved when it can be) and of the overrides that made it."""
    try:
        plain = OmegaConf.to_container(config, resolve=True)
    except Exception:  # an interpolation that fails here fails in the job too, with its own error
        plain = OmegaConf.to_container(config, resolve=False)
    overrides = OmegaConf.select(config, "hydra.overrides.task", default=None)
    return secret_values(plain) | override_secrets(list(overrides or []))


def _redact_document(value: Any) -> Any:
    """A loaded YAML document with secret keys redacted and each override string in a list redacted."""
    if isinstance(value, dict):
        return {k: _redact_document(v) for k, v in redact_secrets(value, keep_interpolations=True).items()}
    if isinstance(value, list):
        return [redact_override(v) if isinstance(v, str) else _redact_document(v) for v in value]
    return value


def redact_yaml_file(path: Path) -> bool:
    """Rewrite one YAML file Hydra saved with its secrets replaced by `***`; True when it changed."""
    if not path.is_file():
        return False
    original = path.read_text()
    document = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    redacted = redact_text(OmegaConf.to_yaml(_redact_document(document)))
    if redacted == original or OmegaConf.to_container(OmegaConf.create(redacted), resolve=False) == document:
        return False
    with atomic_path(path) as tmp:
        tmp.write_text(redacted)
    return True


class RedactSecrets(Callback):
    """Registered in `conf/hydra/default.yaml`; see the module docstring."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        remember_secrets(config_secrets(config))
        hydra = config.hydra
        if hydra.output_subdir is not None:
            folder = Path(str(hydra.runtime.output_dir)) / str(hydra.output_subdir)
            for name in JOB_FILES:
                redact_yaml_file(folder / name)
        if hydra.mode == RunMode.MULTIRUN:
            redact_yaml_file(Path(str(hydra.sweep.dir)) / "multirun.yaml")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        for name in SWEEP_FILES:
            redact_yaml_file(Path(str(config.hydra.sweep.dir)) / name)
