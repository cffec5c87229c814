"""The tuning modes that train the encoder's own weights: frozen (none), full (all), partial (the top layers).

LoRA, AdaLoRA, IA3 and prefix tuning come from the peft library (`lmrec.encoders.tuning.peft_methods`); Houlsby
bottleneck adapters live in `lmrec.encoders.tuning.bottleneck` because peft has none and AdapterHub's `adapters`
pins an older transformers.
"""

from __future__ import annotations

from torch import nn

from lmrec.encoders.layer_cache import bert_layers, transformer_layers
from lmrec.encoders.tuning.base import Tuning, freeze, freeze_unused_pooler
from lmrec.errors import ConfigError


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
                f"{type(model).__name__} has no stack of transformer blocks (encoder.layer, layers or h) for "
                "partial tuning to split"
            )
        depth = self.frozen_layers + len(layers) if self.frozen_layers < 0 else self.frozen_layers
        if not 0 <= depth <= len(layers):
            raise ConfigError(
                f"model.tuning.frozen_layers={self.frozen_layers} but the encoder has {len(layers)} layers; "
                f"expected {-len(layers)} to {len(layers)}"
            )
        # The frozen bottom's output is cached for BERT-family stacks only (lmrec.encoders.layer_cache).
        cacheable = self.freeze_embeddings and self.cache_frozen_layers and bert_layers(model) is not None
        self.cached_depth = depth if cacheable else None
        FullTuning().apply(model)
        if self.freeze_embeddings:
            freeze(model.embeddings if hasattr(model, "embeddings") else model.get_input_embeddings())
        for layer in layers[:depth]:
            freeze(layer)
        return model
