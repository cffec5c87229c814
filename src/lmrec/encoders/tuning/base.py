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

from lmrec.config.schema import BOOL, Number, Option
from lmrec.errors import ConfigError

#: `model.tuning`: the options every mode shares (the mode's own are under `model.tuning.method`, its class's).
#: Read as a mapping, so the defaults are declared here; `conf/model/tuning/_tuned.yaml` must match them (a test).
TUNING_OPTIONS: tuple[Option, ...] = (
    Option("lr", (Number(0.0, open_low=True),), nullable=True, note="null: model.optimizer.lr", default=1.0e-4),
    Option("weight_decay", (Number(0.0),), nullable=True, note="null: model.optimizer's", default=0.01),
    Option("gradient_checkpointing", (BOOL,), default=False),
    Option("compile", (BOOL,), default=False),
    Option("layer_cache_on_disk", (BOOL,), default=False),
)


def encoder_parameter_groups(
    model: nn.Module, encoders: tuple[nn.Module, ...], lr: float | None, weight_decay: float | None
) -> list[dict]:
    """The optimizer's parameter groups: the model's own parameters with the optimizer's settings, and each trained
    encoder's pretrained weights with `model.tuning.lr` and `weight_decay` (pretrained weights want a far smaller
    step), without decay on biases and LayerNorm weights, as is standard for BERT fine-tuning."""
    encoder_ids = {id(p) for encoder in encoders for p in encoder.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in encoder_ids]
    groups: list[dict] = [{"params": rest, "name": "model"}]
    decay, no_decay = [], []
    for encoder in encoders:
        for name, p in encoder.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    overrides = {} if lr is None else {"lr": float(lr)}
    if decay:
        wd = {} if weight_decay is None else {"weight_decay": float(weight_decay)}
        groups.append({"params": decay, "name": "encoder", **overrides, **wd})
    if no_decay:
        groups.append({"params": no_decay, "name": "encoder_no_decay", **overrides, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


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


class TuningHooks:
    """The `TrainableEncoder` hooks for a module that holds a tuning mode (`tuning`) and the model it was applied to
    (`tuned_model`): the tuned text tower and the reranker's language model hand them to the mode alike."""

    tuning: Tuning
    tuned_model: nn.Module

    def on_fit_start(self, total_steps: int) -> None:
        self.tuning.on_fit_start(self.tuned_model, total_steps)

    def after_optimizer_step(self, global_step: int) -> None:
        self.tuning.after_optimizer_step(self.tuned_model, global_step)

    def regularization(self) -> torch.Tensor | None:
        return self.tuning.regularization(self.tuned_model)
