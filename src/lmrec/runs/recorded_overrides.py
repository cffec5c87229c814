"""The overrides a run folder records (`run_state.json`), read back as data when the run is resumed.

A folder may come from someone else, so what it records is checked against what lmrec itself records before
Hydra composes anything from it (`check_recorded_overrides`), and the secrets lmrec never records are asked for
again (`with_secrets_given_again`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lmrec.config.allowlist import check_target, check_targets
from lmrec.config.secrets import REDACTED, redact_override
from lmrec.errors import ConfigError, RunFolderError

#: The run state file's name (lmrec.runs.folder.RUN_STATE_FILE), for messages.
RUN_STATE = "run_state.json"
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9/_.:@+~-]+")


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def override_value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def quoted_path(path: Path) -> str:
    """A folder as a Hydra override value: quoted when it holds characters the override grammar reads itself."""
    text = str(path)
    if _PLAIN_VALUE.fullmatch(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_recorded_overrides(overrides: list[Any], run_dir: Path) -> None:
    """A run folder is data: its run_state.json may hold only what lmrec records when a run starts.

    lmrec records the run's own overrides (`HydraConfig.overrides.task`), never Hydra's settings, so an override of
    `hydra.*` (which could add Hydra callbacks, instantiated without lmrec's allow-list) means the file was edited;
    and every `_target_` an override names must pass the allow-list, as everything a config names does."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

    where = run_dir / RUN_STATE
    parser = OverridesParser.create()
    for override in overrides:
        text = str(override)
        key = override_key(text)
        if not isinstance(override, str) or key == "hydra" or key.startswith(("hydra.", "hydra/", "hydra@")):
            raise RunFolderError(
                f"{where} records the override {text!r}, which lmrec never records (it sets Hydra itself); the file "
                "was edited, so this folder is not resumed. Start a new run instead"
            )
        try:
            parsed = parser.parse_override(text)
        except Exception as err:  # a start records only overrides Hydra parsed
            raise RunFolderError(f"{where} records {text!r}, which is not a Hydra override ({err})") from None
        value = Override._convert_value(parsed._value) if parsed.value_type is not None else None
        if key.rsplit(".", 1)[-1] == "_target_":
            check_target(value, key.rsplit(".", 1)[0])
        check_targets(value, key)


def with_secrets_given_again(saved: list[str], given: list[str], run_dir: Path) -> list[str]:
    """The saved overrides with each redacted one (`+x.token=***`: run_state.json never holds a secret) replaced
    by the same override given again on the resume command line, which must then carry the real value."""
    restored = []
    for override in saved:
        if REDACTED not in override or redact_override(override) != override:
            restored.append(override)
            continue
        again = [o for o in given if o != override and redact_override(o) == override]
        if not again:
            raise ConfigError(
                f"{run_dir} was started with a secret on the command line ({override}), which lmrec does not keep; "
                f"pass it again: lmrec-train resume={quoted_path(run_dir)} '{override_key(override)}=<the secret>' "
                "(or set it in the environment, e.g. WANDB_API_KEY, next time)"
            )
        restored.append(again[-1])
    return restored
