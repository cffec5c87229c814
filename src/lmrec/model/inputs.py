"""The data-derived constructor arguments the model builder offers to towers and heads, by parameter name.

A component asks for one by naming it in its constructor (`def __init__(self, history: CSRMatrix, dim: int)`);
the builder computes only the arguments some component names. A component that needs something new registers a
provider in its own module, next to its class, and nothing else changes (the builder imports the component's
module before it looks the argument up):

    @model_input("first_items")
    def _first_items(context: BuildContext) -> torch.Tensor:
        history = context.datamodule.train_history()
        return history.col[history.crow[:-1]]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

if TYPE_CHECKING:
    from lmrec.data.datamodule import RecDataModule

#: parameter name -> provider(context) -> value
PROVIDERS: dict[str, Callable[[BuildContext], Any]] = {}


def model_input(name: str) -> Callable[[Callable[[BuildContext], Any]], Callable[[BuildContext], Any]]:
    """Register `provider` as the source of the constructor argument `name` (one provider per name)."""

    def register(provider: Callable[[BuildContext], Any]) -> Callable[[BuildContext], Any]:
        if name in PROVIDERS and PROVIDERS[name] is not provider:
            raise ValueError(f"model input {name!r} already has a provider ({PROVIDERS[name].__qualname__})")
        PROVIDERS[name] = provider
        return provider

    return register


@dataclass
class BuildContext:
    """What providers may read: the prepared data, the model width, and the item and user text source factories."""

    datamodule: RecDataModule
    dim: int
    text_source: Callable[[], nn.Module]
    #: The user text vectors' factory (`model/user_tower=text|hybrid`), like `text_source` for items.
    user_text_source: Callable[[], nn.Module] = field(default=lambda: _no_user_text())
    _memo: dict[str, Any] = field(default_factory=dict)

    def available(self) -> Mapping[str, Callable[[], Any]]:
        """Each registered argument as a zero-argument callable, computed at most once per context. A live view:
        providers registered later (when a component's module is imported) are included."""
        return _LiveInputs(self)

    def _value(self, name: str) -> Any:
        if name not in self._memo:
            self._memo[name] = PROVIDERS[name](self)
        return self._memo[name]


def _no_user_text() -> nn.Module:
    from lmrec.errors import ConfigError

    raise ConfigError("this model reads no user text")


class _LiveInputs(Mapping):
    def __init__(self, context: BuildContext) -> None:
        self.context = context

    def __getitem__(self, name: str) -> Callable[[], Any]:
        if name not in PROVIDERS:
            raise KeyError(name)
        return functools.partial(self.context._value, name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(PROVIDERS))

    def __len__(self) -> int:
        return len(PROVIDERS)


@model_input("num_users")
def _num_users(context: BuildContext) -> int:
    return context.datamodule.num_users


@model_input("num_items")
def _num_items(context: BuildContext) -> int:
    return context.datamodule.num_items


@model_input("dim")
def _dim(context: BuildContext) -> int:
    return context.dim


@model_input("history")
def _history(context: BuildContext) -> Any:
    """Each user's training items (CSR): never validation or test interactions."""
    return context.datamodule.train_history()


@model_input("text_source")
def _text_source(context: BuildContext) -> nn.Module:
    """The item text vectors: a frozen cached table, or a trainable encoder (`model/tuning`)."""
    return context.text_source()
