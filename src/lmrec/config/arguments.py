"""The data-derived constructor arguments of components, supplied by parameter name from one registry.

A component asks for something only the data knows by naming it in its constructor
(`def __init__(self, history: CSRMatrix, dim: int)`, `RatingTask(rating_scale)`); the builder passes every
registered argument the target names, computed only when named (`lmrec.config.instantiate.instantiate_with`).
Tasks, towers, heads and fitted baselines all draw from this one registry. A component that needs something new
registers a provider in its own module, next to its class, and nothing else changes (the builder imports the
component's module, through its `_target_`, before it looks the argument up):

    @provides("first_items")
    def _first_items(facts: BuildFacts) -> torch.Tensor:
        history = facts.datamodule.train_history()
        return history.col[history.crow[:-1]]

A provider reads the build's *facts*: what is known at the stage the component is built. A task is built before
any file is read (facts: `source`, the data section `data`); towers, heads and baselines after the data is loaded
(facts: `source`, `datamodule`, the text-vector factories, and `dim` for towers and heads). A provider that reads
a fact its stage lacks gets a ConfigError naming the fact and what the stage knows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lmrec.errors import ConfigError

#: argument name -> provider(facts) -> value
PROVIDERS: dict[str, Callable[[BuildFacts], Any]] = {}


def provides(name: str) -> Callable[[Callable[[BuildFacts], Any]], Callable[[BuildFacts], Any]]:
    """Register `provider` as the source of the constructor argument `name` (one provider per name)."""

    def register(provider: Callable[[BuildFacts], Any]) -> Callable[[BuildFacts], Any]:
        if name in PROVIDERS and _where(PROVIDERS[name]) != _where(provider):  # a module imported again may
            raise ValueError(f"constructor argument {name!r} already has a provider ({_where(PROVIDERS[name])})")
        PROVIDERS[name] = provider
        return provider

    return register


def _where(provider: Callable[..., Any]) -> str:
    return f"{provider.__module__}.{provider.__qualname__}"


class BuildFacts:
    """What providers may read at one build stage, by attribute (`facts.source`, `facts.datamodule`, ...)."""

    def __init__(self, stage: str, **facts: Any) -> None:
        self._stage, self._facts, self._memo = stage, facts, {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._facts[name]
        except KeyError:
            raise ConfigError(
                f"a component built at the {self._stage} stage needs {name!r}, which is not known there (known: "
                f"{', '.join(sorted(self._facts)) or 'nothing'}); a task is built before the data is read"
            ) from None

    def with_facts(self, stage: str, **more: Any) -> BuildFacts:
        """The facts of a later stage: these plus `more`."""
        return BuildFacts(stage, **{**self._facts, **more})

    def arguments(self) -> Mapping[str, Callable[[], Any]]:
        """Each registered argument as a zero-argument callable, computed at most once per facts object. A live
        view: providers registered later (when a component's module is imported) are included."""
        return _Arguments(self)

    def _value(self, name: str) -> Any:
        if name not in self._memo:
            self._memo[name] = PROVIDERS[name](self)
        return self._memo[name]


class _Arguments(Mapping):
    def __init__(self, facts: BuildFacts) -> None:
        self.facts = facts

    def __getitem__(self, name: str) -> Callable[[], Any]:
        if name not in PROVIDERS:
            raise KeyError(name)
        return functools.partial(self.facts._value, name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(PROVIDERS))

    def __len__(self) -> int:
        return len(PROVIDERS)
