"""Run a BERT in two parts: the frozen bottom (embeddings + lowest N layers) once, the trained top every step.

With `partial` tuning the embeddings and the lowest N transformer layers never change, so every item's hidden
states after layer N never change either. Computing them once per catalogue — as the frozen mode caches its
embeddings — takes N/L of the forward pass out of every training step and every evaluation pass; the backward
pass is unchanged (it never went below layer N). transformers has no "start at layer N" entry point, so the two
halves are run here with the model's own modules and its own attention-mask builder.

The frozen bottom is run in eval mode (no dropout), as the frozen mode's embedding cache is; the uncached path
applies dropout in the frozen layers too while training, so the two differ only by that noise.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask


def bert_layers(model: nn.Module) -> nn.ModuleList | None:
    """The stack of transformer blocks of a BERT-family model (`encoder.layer`), or None for other shapes: the
    only shape the two-part run below supports (a decoder's blocks also need rotary positions and a causal mask)."""
    layers = getattr(getattr(model, "encoder", None), "layer", None)
    return layers if isinstance(layers, nn.ModuleList) else None


def transformer_layers(model: nn.Module) -> nn.ModuleList | None:
    """The stack of transformer blocks: BERT `encoder.layer`, Llama/Mistral/Qwen `layers`, GPT-2 `h`."""
    for layers in (bert_layers(model), getattr(model, "layers", None), getattr(model, "h", None)):
        if isinstance(layers, nn.ModuleList):
            return layers
    return None


def _mask(model: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
    return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention_mask)


def run_bottom(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, depth: int) -> torch.Tensor:
    """Hidden states after the embeddings and the lowest `depth` layers (what `output_hidden_states[depth]` is)."""
    hidden = model.embeddings(input_ids=input_ids)
    mask = _mask(model, hidden, attention_mask)
    for layer in bert_layers(model)[:depth]:
        hidden = layer(hidden, mask)
    return hidden


def run_top(model: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor, depth: int) -> torch.Tensor:
    """The last hidden state, from the states after layer `depth` (layers `depth`.. run, with gradients)."""
    mask = _mask(model, hidden, attention_mask)
    for layer in bert_layers(model)[depth:]:
        hidden = layer(hidden, mask)
    return hidden


def gather_ragged(
    states: torch.Tensor, starts: torch.Tensor, items: torch.Tensor, lengths: torch.Tensor, width: int
) -> torch.Tensor:
    """Padded `(items, width, hidden)` states from per-token rows stored without padding.

    Item texts are short on average (about 18 MiniLM tokens on ml-latest-small, at most 71), so storing each item
    padded to the longest would take four times the memory. `starts[i]` is item i's first row in `states`.
    """
    positions = torch.arange(width, device=items.device)
    index = starts[items].unsqueeze(1) + positions
    # padded positions read the catalogue's first token row; the attention mask and the pooling ignore them
    index = torch.where(positions < lengths.unsqueeze(1), index, 0)
    return states[index]
