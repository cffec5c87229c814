"""Tuning modes: which weights of the text encoder train, selected by `model/tuning=<name>`.

Each mode is a small object whose `apply` takes a loaded transformers model, sets `requires_grad` on exactly the
weights it trains (adding new ones where the method needs them) and returns the model to use. LoRA, AdaLoRA, IA3
and prefix tuning come from the peft library; Houlsby bottleneck adapters live in `lmrec.encoders.adapters`
because peft has none and AdapterHub's `adapters` pins an older transformers.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from lmrec.encoders.layer_cache import transformer_layers
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)


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

    def apply(self, model: nn.Module) -> nn.Module:
        freeze(model)
        return model

    def on_fit_start(self, model: nn.Module, total_steps: int) -> None:
        """Called once the trainer knows how many optimizer steps the fit will take."""

    def after_optimizer_step(self, model: nn.Module, global_step: int) -> None:
        """Called after every optimizer step, while gradients are still in place."""

    def regularization(self, model: nn.Module) -> torch.Tensor | None:
        """An extra training loss term the method needs, or None."""
        return None


class FrozenTuning(Tuning):
    """No encoder weight trains; item vectors come from the embedding cache (the default)."""


class FullTuning(Tuning):
    """Every encoder weight trains (except the unused pooler)."""

    name = "full"
    caches_embeddings = False

    def apply(self, model: nn.Module) -> nn.Module:
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        freeze_unused_pooler(model)
        return model


class PartialTuning(Tuning):
    """The embeddings and the lowest `frozen_layers` transformer layers stay fixed; the layers above train.

    Lower layers carry general language features, upper layers the task-specific ones; freezing the bottom
    saves their gradients and optimizer state. With frozen embeddings the frozen bottom's output is also cached
    (`cache_frozen_layers`), so each step runs only the layers that train. A negative `frozen_layers` counts
    from the top, as a Python slice does: -1 trains only the top layer of any depth of model.
    """

    name = "partial"
    caches_embeddings = False

    def __init__(
        self, frozen_layers: int = 3, freeze_embeddings: bool = True, cache_frozen_layers: bool = True
    ) -> None:
        self.frozen_layers = int(frozen_layers)
        self.freeze_embeddings = bool(freeze_embeddings)
        self.cache_frozen_layers = bool(cache_frozen_layers)

    def apply(self, model: nn.Module) -> nn.Module:
        layers = transformer_layers(model)
        if layers is None:
            raise ConfigError(
                f"{type(model).__name__} has no encoder.layer stack; partial tuning needs a BERT-family model"
            )
        depth = self.frozen_layers + len(layers) if self.frozen_layers < 0 else self.frozen_layers
        if not 0 <= depth <= len(layers):
            raise ConfigError(
                f"model.tuning.frozen_layers={self.frozen_layers} but the encoder has {len(layers)} layers; "
                f"expected {-len(layers)} to {len(layers)}"
            )
        self.cached_depth = depth if self.freeze_embeddings and self.cache_frozen_layers else None
        FullTuning().apply(model)
        if self.freeze_embeddings:
            freeze(model.embeddings if hasattr(model, "embeddings") else model.get_input_embeddings())
        for layer in layers[:depth]:
            freeze(layer)
        return model


class PeftTuning(Tuning):
    """Any peft method that applies to an encoder-only model, configured by its peft config fields.

    `peft_type` is peft's name for the method (LORA, ADALORA, IA3, PREFIX_TUNING, ...); the other keys are that
    method's config fields, passed through unchanged, so every peft option is available from the command line.
    """

    caches_embeddings = False

    def __init__(self, peft_type: str, name: str | None = None, **options: Any) -> None:
        import peft

        self.peft_type = str(peft_type).upper()
        self.name = name or self.peft_type.lower()
        if self.peft_type == "ADALORA" and not options.get("total_step"):
            # A placeholder so peft's config check passes; on_fit_start sets the trainer's real step count.
            options["total_step"] = 1_000_000
        try:
            self.config = peft.get_peft_config({"peft_type": self.peft_type, **options})
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"model.tuning ({self.peft_type}): {err}") from None

    def apply(self, model: nn.Module) -> nn.Module:
        import peft

        try:
            tuned = peft.get_peft_model(model, self.config)
        except (ValueError, TypeError, AttributeError) as err:
            raise ConfigError(
                f"model.tuning ({self.peft_type}) cannot be applied to {type(model).__name__}: {err}"
            ) from None
        freeze_unused_pooler(tuned)
        return tuned

    def on_fit_start(self, model: nn.Module, total_steps: int) -> None:
        if self.peft_type != "ADALORA":
            return
        config = self.config
        if config.tinit >= total_steps - config.tfinal:
            raise ConfigError(
                f"model.tuning: AdaLoRA needs tinit ({config.tinit}) < total steps ({total_steps}) - tfinal "
                f"({config.tfinal}); lower tinit/tfinal or train longer"
            )
        # peft reads total_step from the live config object when it schedules the rank budget.
        model.peft_config["default"].total_step = int(total_steps)

    def after_optimizer_step(self, model: nn.Module, global_step: int) -> None:
        if self.peft_type == "ADALORA":
            model.base_model.update_and_allocate(global_step)

    def regularization(self, model: nn.Module) -> torch.Tensor | None:
        """AdaLoRA's orthogonality penalty on P and Q.

        peft adds it only when the wrapped model returns a loss, which an encoder-only BERT never does, so the
        same term is computed here.
        """
        if self.peft_type != "ADALORA" or self.config.orth_reg_weight <= 0:
            return None
        terms = []
        for name, weight in model.named_parameters():
            if ("lora_A" in name or "lora_B" in name) and weight.requires_grad:
                product = weight @ weight.T if "lora_A" in name else weight.T @ weight
                identity = torch.eye(product.shape[0], device=weight.device, dtype=product.dtype)
                terms.append(torch.norm(product - identity, p="fro"))
        return self.config.orth_reg_weight * torch.stack(terms).mean() if terms else None


def is_peft_model(model: nn.Module) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)
