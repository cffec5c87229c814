"""Which `_target_`s a config may name: a run folder is data, not code.

`lmrec-eval` rebuilds a model from a run folder someone else may have written, and Hydra would call whatever its
saved config names (`_target_: builtins.open` truncates a file; `lmrec.atomic.write_json_atomic` writes one). So
every node is walked before anything in it is built, and each target must be

- a class under one of `CLASS_PREFIXES` (lmrec's components, torch optimizers and schedulers, Lightning's
  trainer, callbacks, loggers, strategies, plugins, profilers and accelerators), or one of `FUNCTIONS`
  (lmrec's functions can write files, so they are allowed one by one), or
- under a prefix of the `LMREC_ALLOWED_TARGETS` environment variable (comma-separated, e.g.
  `mypkg.,other.module.Class`): how a researcher's own components are allowed. A saved config cannot extend it.

Both the name the config gives and where the object is defined (`module.qualname`) must be allowed, so a path that
walks from an allowed module into an imported one (`lmrec.runtime.loggers.os.system`) is refused too. A name is
checked before its module is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from lmrec.errors import ConfigError

ENV_VAR = "LMREC_ALLOWED_TARGETS"

_LIGHTNING_PIECES = ("callbacks", "loggers", "strategies", "plugins", "profilers", "accelerators")
CLASS_PREFIXES = (
    "lmrec.",
    "torch.optim.",
    *(f"{package}.{piece}." for package in ("pytorch_lightning", "lightning.pytorch") for piece in _LIGHTNING_PIECES),
    *(
        f"{package}.{piece}."
        for package in ("lightning_fabric", "lightning.fabric")
        for piece in ("plugins", "accelerators")
    ),
)
#: The trainer, by the name configs use and by where it is defined.
CLASSES = (
    "pytorch_lightning.Trainer",
    "pytorch_lightning.trainer.trainer.Trainer",
    "lightning.pytorch.Trainer",
    "lightning.pytorch.trainer.trainer.Trainer",
)
#: What a config read from a run folder may name (`lmrec-eval`, `lmrec-export`): what rebuilding its data, model and
#: Trainer needs. Lightning's callbacks, loggers, profilers, plugins, strategies and accelerators are left out: their
#: side effects (files written, folders created, processes started) are never needed to re-test a run, and a folder
#: may come from anyone.
FOLDER_CLASS_PREFIXES = ("lmrec.", "torch.optim.")
#: Functions a shipped config names (`_partial_` factories).
FUNCTIONS = ("lmrec.model.schedules.warmup_decay",)

_HINT = f"to allow it, add its package or name to the environment variable {ENV_VAR} (comma-separated prefixes)"
_FOLDER_HINT = (
    "a run folder's config may name only what rebuilding its data, model and Trainer needs (lmrec's components, "
    f"torch optimizers, the Trainer, and prefixes in {ENV_VAR}); treat this folder as untrusted"
)


def user_prefixes() -> tuple[str, ...]:
    """The researcher's own allowed prefixes, read from the environment at each check (never from a config)."""
    return tuple(p.strip() for p in os.environ.get(ENV_VAR, "").split(",") if p.strip())


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p.rstrip(".") or name.startswith(p if p.endswith(".") else p + ".") for p in prefixes)


def _class_prefixes(from_folder: bool) -> tuple[str, ...]:
    return FOLDER_CLASS_PREFIXES if from_folder else CLASS_PREFIXES


def name_allowed(name: str, from_folder: bool = False) -> bool:
    """Whether a dotted name may be imported at all (the first check, before any import)."""
    return _matches(name, _class_prefixes(from_folder) + CLASSES + FUNCTIONS + user_prefixes())


def _defined_at(obj: Any) -> str | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) else None


def object_allowed(obj: Any, from_folder: bool = False) -> bool:
    """Whether an imported object may be called: an allowed class, an allowed function, or the researcher's."""
    where = _defined_at(obj)
    if where is None:
        return False
    if _matches(where, user_prefixes()):
        return True
    if isinstance(obj, type):
        return _matches(where, _class_prefixes(from_folder) + CLASSES)
    return where in FUNCTIONS


def check_target(target: Any, key: str, from_folder: bool = False) -> Any:
    """The object a `_target_` names, after checking it is allowed; a ConfigError naming `key` otherwise.
    `from_folder`: the config was read from a run folder, where the narrower `FOLDER_CLASS_PREFIXES` apply."""
    from hydra.utils import get_object

    key = f"{key}._target_" if key else "_target_"
    hint = _FOLDER_HINT if from_folder else _HINT
    if not isinstance(target, str):
        if callable(target) and object_allowed(target, from_folder):
            return target
        raise ConfigError(f"{key}={target!r} is not on lmrec's allow-list of components; {hint}")
    if not name_allowed(target, from_folder):
        raise ConfigError(f"{key}={target} is not on lmrec's allow-list of components; {hint}")
    try:
        obj = get_object(target)
    except Exception as err:  # an unknown target is a config mistake: name it
        raise ConfigError(f"{key}={target}: cannot be imported ({err})") from None
    if not object_allowed(obj, from_folder):
        where = _defined_at(obj) or type(obj).__name__
        raise ConfigError(
            f"{key}={target} resolves to {where}, which is not on lmrec's allow-list of components "
            f"(only classes, and named functions, from allowed modules); {hint}"
        )
    return obj


def _targets(node: Any, key: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        if "_target_" in node:
            yield key, node["_target_"]
        for name, child in node.items():
            yield from _targets(child, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list | tuple):
        for index, child in enumerate(node):
            yield from _targets(child, f"{key}[{index}]")


def check_targets(node: Any, key: str | None = None, from_folder: bool = False) -> None:
    """Refuse a config node (a plain or OmegaConf mapping or list) if any `_target_` in it, at any depth, including
    `_args_`, lists and `_partial_` nodes, is not allowed. Runs before anything in the node is built.

    Interpolations are resolved first, as Hydra resolves them before it instantiates, so a target hidden behind
    `${...}` is seen.
    """
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    for where, target in _targets(plain, key or ""):
        check_target(target, where, from_folder)
