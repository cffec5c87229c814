"""The tuning contract: a mode decides which encoder weights train, and how a tuned encoder is saved and exported.

Each mode is a small object whose `apply` takes a loaded transformers model, sets `requires_grad` on exactly the
weights it trains (adding new ones where the method needs them) and returns the model to use. Hooks let a mode act
during training (AdaLoRA's rank schedule) and add a loss term; `export` writes the tuned model in the format its
users load it with, so `lmrec-export` never asks which mode it holds.

`TrainableEncoder` is the other half: what the LightningModule needs from any module whose pretrained weights
train inside the recommender. The module finds such modules by this protocol, not by class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from lmrec.errors import ConfigError


def freeze(model: nn.Module) -> None:
    for parameter in model.parameters():
        parameter.requires_grad_(False)


def freeze_unused_pooler(model: nn.Module) -> None:
    """BERT's pooler feeds only its own classification heads; lmrec pools hidden states itself.

    Left trainable it would get no gradient, which trips DDP's unused-parameter check and makes "trainable"
    counts lie.
    """
    for name, parameter in model.named_parameters():
        if name.startswith("pooler.") or ".pooler." in name:
            parameter.requires_grad_(False)


class Tuning:
    """Base class: the frozen encoder with cached embeddings."""

    name = "frozen"
    #: Frozen vectors never change, so they are computed once and read from the on-disk cache.
    caches_embeddings = True
    #: Number of frozen transformer layers (above frozen embeddings) whose output is computed once per catalogue
    #: instead of every step (`lmrec.encoders.layer_cache`); None when the bottom of the model trains.
    cached_depth: int | None = None
    #: Whether `export(merge=True)` can fold the trained update into the base weights.
    mergeable = False

    def apply(self, model: nn.Module) -> nn.Module:
        freeze(model)
        return model

    def base_model(self, model: nn.Module) -> nn.Module:
        """The transformers model inside what `apply` returned (a peft wrapper's base, else the model itself)."""
        return model

    def on_fit_start(self, model: nn.Module, total_steps: int) -> None:
        """Called once the trainer knows how many optimizer steps the fit will take."""

    def after_optimizer_step(self, model: nn.Module, global_step: int) -> None:
        """Called after every optimizer step, while gradients are still in place."""

    def regularization(self, model: nn.Module) -> torch.Tensor | None:
        """An extra training loss term the method needs, or None."""
        return None

    def check_export(self, merge: bool) -> None:
        """Refuse an export this mode cannot write, before any weights are loaded."""
        if self.caches_embeddings:
            raise ConfigError(f"model/tuning={self.name} trains no encoder weights; there is nothing tuned to export")
        if merge and not self.mergeable:
            raise ConfigError(f"merge_lora=true applies to LoRA-type tuning; this run used model/tuning={self.name}")

    def export(self, model: nn.Module, folder: Path, *, base_name: str, merge: bool = False) -> None:
        """Write the tuned model into `folder` (the tokenizer and lmrec's pooling file are written beside it).
        By default a transformers model folder, which `AutoModel.from_pretrained(folder)` loads."""
        model.save_pretrained(folder)


@runtime_checkable
class TrainableEncoder(Protocol):
    """A module whose pretrained weights train inside the recommender (e.g. `TunedTextEncoder`).

    The LightningModule gives such modules their own learning rate, calls the hooks, leaves their frozen weights
    out of checkpoints (they are identical to the pretrained files) and records the identity of those files.
    """

    def frozen_state_keys(self) -> set[str]:
        """Keys of this module's state dict that do not train (relative to the module)."""
        ...

    def base_weights_sha256(self) -> str:
        """SHA-256 of the pretrained weights the frozen keys come from."""
        ...

    def on_fit_start(self, total_steps: int) -> None: ...

    def after_optimizer_step(self, global_step: int) -> None: ...

    def regularization(self) -> torch.Tensor | None: ...
