"""Run a BERT in two parts: the frozen bottom (embeddings + lowest N layers) once, the trained top every step.

With `partial` tuning the embeddings and the lowest N transformer layers never change, so every item's hidden
states after layer N never change either. Computing them once per catalogue — as the frozen mode caches its
embeddings — takes N/L of the forward pass out of every training step and every evaluation pass; the backward
pass is unchanged (it never went below layer N). transformers has no "start at layer N" entry point, so the two
halves are run here with the model's own modules and its own attention-mask builder.

The frozen bottom is run in eval mode (no dropout), as the frozen mode's embedding cache is; the uncached path
applies dropout in the frozen layers too while training, so the two differ only by that noise.

`cached_bottom_states` keeps those states on disk too, so the jobs of a sweep compute them once: an entry under
`<cache>/layer_states/<key>/` (key: the base weights' SHA-256, the depth, the token ids, dtype and device type)
holds one safetensors file sealed by a manifest (`lmrec.cache_integrity`), checked on every read and built under a
file lock, like the item-embedding cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from lmrec.atomic import publish_dir
from lmrec.cache_integrity import entry_lock, remove_entry, seal_dir, verified_entry

log = logging.getLogger(__name__)

LAYER_CACHE = "layer_states"
STATES_FILE = "states.safetensors"


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


def layer_states_key(
    weights_sha256: str, depth: int, token_ids: torch.Tensor, lengths: torch.Tensor, **context: str
) -> str:
    """The states' cache key: the frozen weights, how many layers, exactly which tokens, and whatever else the
    caller says changes the numbers (`dtype`, `device` type: a GPU rounds differently from a CPU)."""
    digest = hashlib.sha256(
        json.dumps({"v": 1, "weights": weights_sha256, "depth": int(depth), **context}, sort_keys=True).encode()
    )
    for tensor in (lengths, token_ids):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def cached_bottom_states(
    cache_dir: Path | None, key: str, compute: Callable[[], tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(per-token states, each item's first row, whether they came from the cache), on the CPU when read.

    `compute` runs at most once per entry across concurrent jobs: the second job waits on the entry's lock and
    reads what the first wrote. A damaged or incomplete entry is removed (with a warning naming the file) and
    recomputed. Without a cache folder the states are computed and not stored.
    """
    if cache_dir is None:
        return (*compute(), False)
    entry = Path(cache_dir) / LAYER_CACHE / key
    with entry_lock(entry):
        if verified_entry(entry, "frozen-layer"):
            try:
                tensors = load_file(str(entry / STATES_FILE))
                log.info("frozen-layer cache hit: %s (%d token rows)", entry, tensors["states"].shape[0])
                return tensors["states"], tensors["starts"], True
            except Exception as err:  # intact bytes that do not read (another layout): recomputed
                log.warning("removing unreadable frozen-layer cache %s: %s", entry, err)
                remove_entry(entry)
        states, starts = compute()
        with publish_dir(entry) as tmp:
            tensors = {"states": states.detach().cpu().contiguous(), "starts": starts.detach().cpu().contiguous()}
            save_file(tensors, str(tmp / STATES_FILE), metadata={"key": key})
            seal_dir(tmp)  # last: the entry is complete only with its manifest
    log.info("frozen-layer states cached at %s", entry)
    return states, starts, False
