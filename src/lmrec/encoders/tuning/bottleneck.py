"""Houlsby bottleneck adapters for BERT-family encoders, written here because peft has none and AdapterHub's
`adapters` library pins an older transformers.

Houlsby et al. (2019) insert a small residual MLP (down-project, non-linearity, up-project) after the attention
output projection and after the feed-forward output projection of every layer, before the residual sum and
LayerNorm, and train only those MLPs (and the LayerNorms). The up-projection starts at zero, so the adapted
model is exactly the pretrained one until training moves it.

In BERT-family code both places are modules with a `dense` projection followed by dropout, a residual and a
`LayerNorm` (BertSelfOutput and BertOutput); the adapter hangs off that `dense` layer as a child module and a
forward hook applies it to the projection's output, so the model's own code and weight names stay untouched.

Decoder LMs place the same two projections before their residual sums (Llama, Mistral, Qwen: `self_attn.o_proj`
and `mlp.down_proj`; GPT-2: `attn.c_proj` and `mlp.c_proj`), so the adapters hang off those. Their norms come
before each block (pre-norm), so `train_layer_norm` applies to BERT-family models only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lmrec.encoders.tuning.base import Tuning, freeze
from lmrec.errors import ConfigError, InputError

ADAPTER_WEIGHTS = "bottleneck_adapters.safetensors"
ADAPTER_CONFIG = "bottleneck_adapters.json"
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}


class Bottleneck(nn.Module):
    """x + up(act(down(x))), with `up` zero-initialised: the identity at the start of training."""

    def __init__(self, width: int, bottleneck: int, activation: str = "gelu") -> None:
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.activation = ACTIVATIONS[activation]()
        self.up = nn.Linear(bottleneck, width)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.activation(self.down(hidden)))


def _apply_adapter(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    """Forward hook on an output projection: a plain function so copies and pickles of the model keep working."""
    return module.adapter(output)


#: The attention-output and feed-forward-output projections of decoder blocks, by their module names.
DECODER_PROJECTIONS = ("self_attn.o_proj", "mlp.down_proj", "attn.c_proj", "mlp.c_proj")


def adapter_sites(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module | None]]:
    """(name, output projection, its post-LayerNorm or None) for every attention-output and feed-forward-output
    block: BERT's `dense` + `LayerNorm` pairs, or else a decoder's output projections."""
    bert = [
        (name, module.dense, module.LayerNorm)
        for name, module in model.named_modules()
        if isinstance(getattr(module, "dense", None), nn.Linear)
        and isinstance(getattr(module, "LayerNorm", None), nn.LayerNorm)
        and ".layer." in f".{name}."
    ]
    if bert:
        return bert
    return [
        (name, module, None)
        for name, module in model.named_modules()
        if name.endswith(DECODER_PROJECTIONS) and getattr(module, "weight", None) is not None
    ]


def _output_width(projection: nn.Module) -> int:
    """nn.Linear's out_features, or GPT-2's Conv1D width (`nf`, its weight is stored transposed)."""
    return int(getattr(projection, "out_features", None) or projection.nf)


class BottleneckAdapters(Tuning):
    """Tuning mode `adapter`: freeze the encoder, add a bottleneck after each attention and feed-forward block."""

    name = "adapter"
    caches_embeddings = False

    def __init__(self, reduction_factor: int = 16, activation: str = "gelu", train_layer_norm: bool = True) -> None:
        if int(reduction_factor) < 1:
            raise ConfigError(f"model.tuning.reduction_factor={reduction_factor}; expected 1 or more")
        if activation not in ACTIVATIONS:
            raise ConfigError(f"model.tuning.activation={activation!r}; expected one of {sorted(ACTIVATIONS)}")
        self.reduction_factor = int(reduction_factor)
        self.activation = activation
        self.train_layer_norm = bool(train_layer_norm)

    def apply(self, model: nn.Module) -> nn.Module:
        freeze(model)
        sites = adapter_sites(model)
        if not sites:
            raise ConfigError(
                f"{type(model).__name__} has no output projections for adapters (BERT dense + LayerNorm, or a "
                f"decoder's {' / '.join(DECODER_PROJECTIONS)})"
            )
        for _, projection, layer_norm in sites:
            width = _output_width(projection)
            bottleneck = Bottleneck(width, max(1, width // self.reduction_factor), self.activation)
            projection.adapter = bottleneck.to(projection.weight.dtype)
            projection.register_forward_hook(_apply_adapter)
            if layer_norm is not None:
                layer_norm.requires_grad_(self.train_layer_norm)
        return model

    def export(self, model: nn.Module, folder: Path, *, base_name: str, merge: bool = False) -> None:
        """The base model plus the bottleneck weights beside it (`load_adapted(folder)` reads both)."""
        save_adapted(model, self, folder)

    def config_dict(self) -> dict:
        return {
            "reduction_factor": self.reduction_factor,
            "activation": self.activation,
            "train_layer_norm": self.train_layer_norm,
        }


def save_adapted(model: nn.Module, tuning: BottleneckAdapters, folder: Path) -> None:
    """The base model in transformers' format (adapter weights left out, so `AutoModel` loads it cleanly) plus
    the adapter weights and their config beside it, readable by `load_adapted`."""
    state = model.state_dict()
    base = {k: v for k, v in state.items() if ".adapter." not in k}
    adapters = {k: v.contiguous() for k, v in state.items() if ".adapter." in k}
    model.save_pretrained(folder, state_dict=base)
    save_file(adapters, str(folder / ADAPTER_WEIGHTS))
    (folder / ADAPTER_CONFIG).write_text(json.dumps(tuning.config_dict(), indent=1) + "\n")


def load_adapted(folder: str | Path) -> nn.Module:
    """Load an encoder exported with adapters: `AutoModel` for the base, then the adapters on top."""
    from transformers import AutoModel

    folder = Path(folder)
    model = AutoModel.from_pretrained(folder)
    tuning = BottleneckAdapters(**json.loads((folder / ADAPTER_CONFIG).read_text()))
    tuning.apply(model)
    missing, unexpected = model.load_state_dict(load_file(str(folder / ADAPTER_WEIGHTS)), strict=False)
    adapter_keys = {k for k in model.state_dict() if ".adapter." in k}
    if unexpected or adapter_keys & set(missing):
        raise InputError(
            f"{folder / ADAPTER_WEIGHTS} does not match the model: missing {missing}, unexpected {unexpected}"
        )
    return model.eval()
