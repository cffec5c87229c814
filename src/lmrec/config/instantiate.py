"""Instantiating config nodes: config mistakes come out as one-line errors, data-derived arguments by name.

Every target is checked against lmrec's allow-list before anything in its node is built (`lmrec.config.allowlist`):
a run folder someone else wrote is data, and its saved config must not make lmrec call arbitrary code.

Component configs are `_partial_` Hydra targets; sizes and tables that only the data knows (number of users, the
item text embeddings, the training history, the rating scale) are passed by parameter name, so a new component
only has to name the argument it wants (`lmrec.config.arguments` is their one registry).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lmrec.config.allowlist import check_target, check_targets
from lmrec.errors import ConfigError, InputError

log = logging.getLogger(__name__)

#: Config keys that describe a component to humans and other configs but are not constructor arguments.
META_KEYS = ("name", "monitor", "monitor_mode")


def instantiate_checked(cfg: Any, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate` of allowed targets only, and errors caused by the config come out as one-line
    InputErrors.

    Every `_target_` in `cfg`, at any depth, is checked against the allow-list first, so a refused one stops the
    whole node before any part of it is built.

    Hydra wraps every exception from a constructor in InstantiationException. Ours are unwrapped as they are; a
    ValueError, TypeError or misconfiguration error from a constructor means its arguments were wrong (a value of
    the wrong type such as `data.batch_size=abc`, an option a third-party Trainer or logger rejects), so it
    becomes a ConfigError naming the target and the config key; its traceback is logged at debug level. Anything
    else keeps its traceback.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    check_targets(cfg, cfg._get_full_key(None) if OmegaConf.is_config(cfg) else None)
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, InputError):
            raise cause from None
        target = str(cfg.get("_target_", "config")) if hasattr(cfg, "get") else "config"
        if isinstance(cause, ValueError | TypeError | MisconfigurationException):
            raise config_error(target, _full_key(err), cause) from None
        raise


def _full_key(err: Exception) -> str | None:
    """The config key Hydra names in its message (`full_key: data.source`), if any."""
    match = re.search(r"full_key: (\S+)", str(err))
    return match.group(1) if match else None


def config_error(target: str, key: str | None, cause: Exception) -> ConfigError:
    """A constructor's ValueError/TypeError as the one-line error a user acts on."""
    log.debug("constructor of %s failed", target, exc_info=cause)
    where = f"{key} ({target})" if key else target
    unknown = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    if unknown:  # a key added with + that the component does not have (`+data.bacth_size=64`)
        return ConfigError(f"{where}: {unknown_option(target, unknown.group(1), key)}")
    if target.startswith("lmrec."):  # our constructors check values; what reaches here is a value of the wrong type
        return ConfigError(f"{where}: {type(cause).__name__}: {cause} (a config value of the wrong type?)")
    return ConfigError(f"{target}: {cause}")


def unknown_option(target: str, name: str, key: str | None) -> str:
    """`name` is not an option of `target`: the message, with the closest option it has."""
    import difflib

    try:
        options = [p for p in target_parameters({"_target_": target}, key) if p not in ("self", "args", "kwargs")]
    except InputError:
        options = []
    close = difflib.get_close_matches(name, options, n=1)
    return f"{name} is not an option of it" + (f"; did you mean {close[0]}?" if close else "")


def target_parameters(cfg: DictConfig | Mapping[str, Any], key: str | None = None) -> Mapping[str, inspect.Parameter]:
    """The constructor parameters of a config node's `_target_` (imports an allowed class, builds nothing)."""
    return inspect.signature(check_target(cfg["_target_"], key or "")).parameters


def instantiate_with(cfg: DictConfig, available: Mapping[str, Callable[[], Any]], key: str | None = None) -> Any:
    """Instantiate `cfg`, passing each argument of `available` that its target's signature names (computed lazily,
    so a component that does not ask for the training history never builds it).

    The target is built as a partial first and then called with the data-derived arguments, so they never pass
    through OmegaConf (which would turn tensors and named tuples into config nodes). A `_partial_: true` node is
    called the same way; it is how a component says it needs data-derived arguments. The target is imported
    before `available` is asked, so providers registered beside the target (`lmrec.config.arguments`) are seen.
    `key` (e.g. `model.user_tower`) names the node in errors.
    """
    plain = OmegaConf.to_container(cfg, resolve=True)
    for meta in META_KEYS:
        plain.pop(meta, None)
    plain.pop("_partial_", None)
    check_targets(plain, key)
    accepted = target_parameters(plain, key)
    factory = instantiate_checked(plain, _convert_="all", _partial_=True)
    wanted = [name for name in accepted if name in available and name not in plain]
    try:  # checked before any argument is computed: computing one (the item text vectors) can take minutes
        inspect.signature(factory).bind(**dict.fromkeys(wanted))
    except (TypeError, ValueError) as err:  # a required argument nobody provides, or a key the target lacks
        raise ConfigError(f"{key or 'config'} ({plain['_target_']}): {err}") from None
    arguments = {name: available[name]() for name in wanted}
    try:
        return factory(**arguments)
    except InputError:
        raise
    except (ValueError, TypeError) as err:
        raise config_error(str(plain["_target_"]), key, err) from None
