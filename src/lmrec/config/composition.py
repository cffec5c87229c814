"""A command line that does not compose (an unknown key, an unknown group option) as one line, exit code 2.

Hydra reports such a mistake in 7 to 23 lines (the search path, every option of the group) and exits with code 1,
from inside `hydra.main`, where lmrec cannot reach the error. So an entry point composes the command line once
itself first (`check_composes`), for a single run; a mistake becomes a ConfigError naming the key and what
would be right (the closest existing key, or the group's options), before Hydra starts, writes a folder or logs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from lmrec.errors import ConfigError


def _keys(node: object, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    found = []
    for key, child in node.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        found += [full, *_keys(child, full)]
    return found


def composition_error(err: Exception, config_name: str, overrides: Sequence[str]) -> ConfigError:
    """Hydra's composition error as one line: which override, and what exists instead."""
    from lmrec.config.compose import compose_config

    text = f"{err}\n{err.__cause__ or ''}"
    unknown_key = re.search(r"Could not override '([^']+)'", text)
    if unknown_key and "not in struct" in text:
        key = unknown_key.group(1)
        known = _keys(OmegaConf.to_container(compose_config(config_name), resolve=False))
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        given = next((o for o in overrides if o.split("=", 1)[0] == key), f"{key}=...")
        return ConfigError(f"{key} is not an option ({hint}to add a key of your own use +{given})")
    missing = re.search(r"Could not find '([^']+)'", text)
    if missing:
        group, _, option = missing.group(1).rpartition("/")
        choices = [c.strip() for c in re.findall(r"^\t(\S+)$", text, flags=re.M) if not c.strip().startswith("_")]
        listed = f"; choose one of {', '.join(choices)}" if choices else ""
        return ConfigError(f"{group}={option} is not an option of the {group} group{listed}")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
    return ConfigError(f"the command line does not compose: {first}")


def _sweeps(overrides: Sequence[str]) -> bool:
    """Whether an override sweeps (`a=1,2`, `a=range(3)`) or sets Hydra's sweeper, which one config cannot show."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:  # not even parseable: composing says what is wrong, in one line
        return False
    return any(o.is_sweep_override() or o.key_or_group.startswith("hydra.sweeper") for o in parsed)


def check_composes(config_name: str, argv: Sequence[str]) -> DictConfig | None:
    """Compose `argv`'s overrides as Hydra is about to, for a single run (a sweep's values are Hydra's to expand);
    a mistake is a ConfigError. Help and config-printing flags are left to Hydra."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lmrec.config.compose import compose_config

    if any(a.startswith("-") for a in argv):  # -m, --help, --cfg, --info ...: Hydra's own modes
        return None
    overrides = list(argv)
    if _sweeps(overrides):  # a multirun set by a config (experiment=baselines): its jobs are Hydra's to compose
        return None
    try:
        return compose_config(config_name, overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise composition_error(err, config_name, overrides) from None
