"""One default per option: where a shipped yaml and the code both give an option a default, they agree.

A yaml node that sets its own `_target_` to an lmrec class is held to that class's constructor defaults (a nested
option group typed as a dataclass, such as `data.split`, to the dataclass's field defaults); the option groups that
no class is built from (`model.encoder`, `model.tuning`) to the defaults their schema declares. Values the yaml
writes as interpolations (`seed: ${seed}`) are wiring, not defaults, and are skipped. A variant file that only
changes a sibling's values (`model/encoder/smollm2_135m.yaml` over `_defaults.yaml`) sets no `_target_` and makes
deliberate choices, so it is not held to anything.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from lmrec.config.allowlist import check_target
from lmrec.config.instantiate import META_KEYS
from lmrec.encoders.options import ENCODER_OPTIONS
from lmrec.encoders.tuning.base import TUNING_OPTIONS

CONF = Path(__file__).resolve().parents[2] / "conf"
#: Folders of overrides and sweeps: every value there is a deliberate choice, not a default.
CHOICES = ("experiment", "hparams_search", "hydra", "protocol")
#: Examples of the user's own files, not defaults: every value there describes the example (the bundled ratings).
TEMPLATES = ("data/generic.yaml", "data/recbole_atomic.yaml")
#: Option groups read as mappings: their base yaml, and the schema that declares their defaults.
OPTION_GROUPS = {"model/encoder/_defaults.yaml": ENCODER_OPTIONS, "model/tuning/_tuned.yaml": TUNING_OPTIONS}


def _yamls() -> list[Path]:
    return sorted(
        p
        for p in CONF.rglob("*.yaml")
        if p.relative_to(CONF).parts[0] not in CHOICES and str(p.relative_to(CONF)) not in TEMPLATES
    )


def _targeted_nodes(node: Any, key: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        if isinstance(node.get("_target_"), str) and node["_target_"].startswith("lmrec."):
            yield key, node
        for name, child in node.items():
            yield from _targeted_nodes(child, f"{key}.{name}" if key else str(name))


def _is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _signature_defaults(target: Any) -> dict[str, inspect.Parameter]:
    """Parameters by name, following `**kwargs` to the parent class (a task subclass passes options on)."""
    found: dict[str, inspect.Parameter] = {}
    for cls in inspect.getmro(target) if inspect.isclass(target) else [target]:
        init = cls.__init__ if inspect.isclass(target) else cls
        if inspect.isclass(target) and "__init__" not in vars(cls):
            continue
        if not (getattr(init, "__module__", "") or "").startswith("lmrec."):
            break
        parameters = inspect.signature(init).parameters
        for name, parameter in parameters.items():
            found.setdefault(name, parameter)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            break
    return found


def _option_group(target: Any, parameter: inspect.Parameter) -> type | None:
    """The dataclass a parameter's annotation names (`split: SplitOptions | Mapping | None`), if any."""
    module = sys.modules[(target.__init__ if inspect.isclass(target) else target).__module__]
    annotation = str(parameter.annotation)
    for name in re.findall(r"[A-Za-z_]\w*", annotation):
        candidate = getattr(module, name, None)
        if inspect.isclass(candidate) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _disagreements(values: Mapping[str, Any], target: Any, where: str) -> Iterator[str]:
    parameters = _signature_defaults(target)
    for key, value in values.items():
        if key in ("_target_", "_partial_", *META_KEYS) or _is_interpolation(value) or key not in parameters:
            continue
        option_group = _option_group(target, parameters[key])
        if option_group is not None and isinstance(value, Mapping):
            defaults = {f.name: f.default for f in dataclasses.fields(option_group)}
            for name, item in value.items():
                if name in defaults and not _is_interpolation(item) and not _same(item, defaults[name]):
                    yield f"{where}.{key}.{name}: yaml {item!r}, {option_group.__name__} {defaults[name]!r}"
            continue
        default = parameters[key].default
        if default is None and isinstance(value, Mapping):  # options of a component this one builds (its own check)
            continue
        if default is not inspect.Parameter.empty and not _same(value, default):
            yield f"{where}.{key}: yaml {value!r}, {target.__qualname__} {default!r}"


@pytest.mark.parametrize("path", _yamls(), ids=lambda p: str(p.relative_to(CONF)))
def test_a_yaml_default_agrees_with_the_code(path: Path) -> None:
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    name = str(path.relative_to(CONF))
    problems: list[str] = []
    if name in OPTION_GROUPS:
        declared = {option.key: option.default for option in OPTION_GROUPS[name] if option.has_default}
        problems += [
            f"{name}: {key}: yaml {value!r}, schema {declared[key]!r}"
            for key, value in raw.items()
            if key in declared and not _same(value, declared[key])
        ]
        assert set(declared) <= set(raw), f"{name} lacks {sorted(set(declared) - set(raw))}"
    for key, node in _targeted_nodes(raw):
        problems += list(_disagreements(node, check_target(node["_target_"], key), f"{name}:{key or '<root>'}"))
    assert not problems, "\n".join(problems)


def test_the_check_finds_a_disagreement(tmp_path: Path) -> None:
    """The test above can fail: a node whose value differs from its constructor's default is reported."""
    node = {"_target_": "lmrec.model.heads.MLPHead", "dropout": 0.3, "hidden": [128, 64]}
    assert list(_disagreements(node, check_target(node["_target_"], "x"), "head")) == [
        "head.dropout: yaml 0.3, MLPHead 0.1"
    ]
    data = {"_target_": "lmrec.data.datamodule.RecDataModule", "split": {"strategy": "random", "cold_share": 0.5}}
    assert list(_disagreements(data, check_target(data["_target_"], "data"), "data")) == [
        "data.split.cold_share: yaml 0.5, SplitOptions 0.2"
    ]
