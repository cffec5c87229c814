"""Where a text item tower gets its item vectors: a frozen cached table, or an encoder that is being tuned.

Both answer the same two questions — vectors for some items (`forward`) and for the whole catalogue
(`all_items`) — so towers, heads and the module do not care which tuning mode is active.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from lmrec.config.arguments import BuildFacts, provides
from lmrec.encoders.layer_cache import cached_bottom_states, gather_ragged, layer_states_key, run_bottom, run_top
from lmrec.encoders.text_encoder import TextEncoder
from lmrec.encoders.tuning.base import Tuning, TuningHooks
from lmrec.encoders.tuning.modes import FullTuning
from lmrec.runtime.progress import progress_bar

log = logging.getLogger(__name__)

#: Item vectors whose largest difference from their mean is below this share of their largest entry are taken as
#: one vector: every item then looks alike to the model (e.g. `model.encoder.max_length` leaves no text tokens).
COLLAPSE_TOLERANCE = 1e-4


def collapsed_spread(embeddings: torch.Tensor) -> float | None:
    """The largest |row - mean row| relative to the largest |entry| when the rows are (nearly) all one vector,
    else None. One pass over the matrix, no pairwise distances: cheap for a catalogue of millions."""
    if embeddings.shape[0] < 2 or embeddings.numel() == 0:
        return None
    rows = embeddings.float()
    scale = float(rows.abs().max())
    spread = float((rows - rows.mean(0, keepdim=True)).abs().max())
    if scale == 0.0 or spread <= COLLAPSE_TOLERANCE * scale:
        return spread / scale if scale else 0.0
    return None


def warn_if_collapsed(embeddings: torch.Tensor, where: str) -> None:
    """A text tower whose item vectors are all the same carries no information, and trains without complaint."""
    spread = collapsed_spread(embeddings)
    if spread is not None:
        log.warning(
            "%s: all %d item text vectors are the same vector (largest difference from their mean: %.1e of the "
            "largest entry), so the text tower cannot tell items apart; check model.encoder.max_length (room for "
            "text after the special tokens and the prompt), model.encoder.layer and data.text.template",
            where,
            embeddings.shape[0],
            spread,
        )


def warn_truncation(truncated: int, total: int, max_length: int | None) -> None:
    """Say how many item texts the encoder cut at `model.encoder.max_length`, louder when it cut most of them."""
    if not truncated or not total:
        return
    share = truncated / total
    advice = "; most item texts lose their end: raise model.encoder.max_length" if share > 0.5 else ""
    log.warning(
        "%d of %d item texts (%.1f%%) were cut at model.encoder.max_length=%s tokens%s",
        truncated,
        total,
        100 * share,
        max_length,
        advice,
    )


def report_truncation(encoding: Mapping, total: int) -> None:
    """`warn_truncation` from an embedding cache's report, when it recorded the count (`truncated`)."""
    truncated = encoding.get("truncated")
    if isinstance(truncated, int):
        warn_truncation(truncated, int(encoding.get("texts", total)), encoding.get("max_length"))


class FrozenTextTable(nn.Module):
    """Cached frozen-encoder vectors, one row per item.

    A persistent buffer, so a checkpoint is self-contained: evaluating it gives the training run's numbers even on
    a machine whose encoder would round differently.
    """

    #: The buffer's name in state dicts (`frozen_vectors_in` finds a table in a checkpoint by it).
    STATE_NAME = "embeddings"

    def __init__(self, embeddings: torch.Tensor, encoding: dict | None = None) -> None:
        super().__init__()
        self.register_buffer(self.STATE_NAME, embeddings.float().clone(), persistent=True)
        # What encoding the catalogue cost (lmrec.encoders.embedding_cache.cached_embeddings), for run records.
        self.encoding = dict(encoding or {})
        warn_if_collapsed(self.embeddings, "frozen item text table")
        if self.encoding.get("cache_hit"):  # on a miss, the encoding pass has just said so itself
            report_truncation(self.encoding, self.embeddings.shape[0])

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.embeddings[items]

    def all_items(self) -> torch.Tensor:
        return self.embeddings


def encoding_report(model: nn.Module) -> dict | None:
    """What encoding the catalogue cost (seconds, texts/s, peak memory, width), from the first frozen table in
    `model` that holds a report (an item tower's comes before a user tower's), for the run records."""
    for module in model.modules():
        if isinstance(module, FrozenTextTable) and module.encoding:
            return {**module.encoding, "width": module.dim}
    return None


def frozen_vectors_in(state: Mapping[str, torch.Tensor], rows: int) -> torch.Tensor | None:
    """The vectors of the one frozen table in a checkpoint's state dict that has `rows` rows (the catalogue's, or
    the users'), or None: a checkpoint is self-contained, so re-testing a frozen run needs no encoder."""
    found = [
        tensor
        for name, tensor in state.items()
        if name.rsplit(".", 1)[-1] == FrozenTextTable.STATE_NAME and tensor.ndim == 2 and tensor.shape[0] == rows
    ]
    return found[0] if len(found) == 1 else None


class TunedTextEncoder(TuningHooks, nn.Module):
    """A trainable encoder over the catalogue's pre-tokenized texts (a `TrainableEncoder`).

    Texts are tokenized once at construction and kept as a padded id matrix on the model's device, so a
    training step only gathers rows: no tokenizer call, no host-to-device copy. `forward` encodes exactly the
    items it is given; the module passes each step's distinct items, so a popular item costs one encoder pass.
    Items are encoded in length-sorted chunks of `chunk_size`: a step's ~1,000 random items padded to their
    longest text would be mostly padding (ml-latest-small's texts are 18 tokens on average, 71 at most).

    When the tuning mode freezes the bottom of the model (`Tuning.cached_depth`), the bottom's output for every
    item is computed once, lazily, and each pass runs only the layers that train (`lmrec.encoders.layer_cache`).
    """

    def __init__(
        self,
        encoder: TextEncoder,
        texts: Sequence[str],
        chunk_size: int = 256,
        tuning: Tuning | None = None,
        compile: bool = False,
        layer_cache_dir: Path | None = None,
    ) -> None:
        """`layer_cache_dir`: keep the frozen layers' output on disk there (content-checked, shared by the runs of
        a sweep, `lmrec.encoders.layer_cache`); None computes it once per run in memory."""
        super().__init__()
        self.encoder = encoder
        self.layer_cache_dir = Path(layer_cache_dir) if layer_cache_dir is not None else None
        self.chunk_size = int(chunk_size)  # model.encoder.batch_size, checked by lmrec.encoders.configured
        self.tuning = tuning or FullTuning()
        self._run_top = run_top
        if compile:
            # dynamic=True: batch size and padded length change every step; without it each shape recompiles.
            encoder.model = torch.compile(encoder.model, dynamic=True)
            self._run_top = torch.compile(run_top, dynamic=True)
        token_lists = encoder.tokenize(texts)["input_ids"]
        warn_truncation(encoder.truncated, len(token_lists), encoder.max_length)
        lengths = torch.tensor([len(ids) for ids in token_lists], dtype=torch.long)
        width = int(lengths.max()) if len(lengths) else 1
        pad_id = encoder.tokenizer.pad_token_id or 0
        token_ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
        for row, ids in enumerate(token_lists):
            token_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        # Data, not weights: rebuilt from the texts on load, so they stay out of checkpoints.
        self.register_buffer("token_ids", token_ids, persistent=False)
        self.register_buffer("lengths", lengths, persistent=False)
        # The frozen bottom's per-token output, filled on first use (on the model's device) and dropped whenever
        # weights are loaded, so it never outlives the weights it came from.
        self.register_buffer("bottom_states", None, persistent=False)
        self.register_buffer("bottom_starts", None, persistent=False)
        self.register_load_state_dict_post_hook(lambda module, _: module.drop_bottom_cache())

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def cached_depth(self) -> int | None:
        """Frozen layers whose output is cached (`Tuning.cached_depth`); None runs the whole model each pass."""
        return self.tuning.cached_depth

    @property
    def tuned_model(self) -> nn.Module:
        """The transformers/peft model the tuning mode manages (never the torch.compile wrapper)."""
        return getattr(self.encoder.model, "_orig_mod", self.encoder.model)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        if len(items) <= self.chunk_size:
            return self._encode(items)
        order = torch.argsort(self.lengths[items], descending=True)
        sorted_items = items[order]
        chunks = [self._encode(sorted_items[i : i + self.chunk_size]) for i in range(0, len(items), self.chunk_size)]
        vectors = torch.cat(chunks)
        return vectors[torch.argsort(order)]

    def _encode(self, items: torch.Tensor) -> torch.Tensor:
        lengths = self.lengths[items]
        width = int(lengths.max()) if len(items) else 1  # pad to this chunk's longest text, not the catalogue's
        attention_mask = (torch.arange(width, device=items.device) < lengths.unsqueeze(1)).long()
        if self.cached_depth is None:
            return self.encoder(self.token_ids[items, :width], attention_mask)
        if self.bottom_states is None:
            self._fill_bottom_cache()
        hidden = gather_ragged(self.bottom_states, self.bottom_starts, items, lengths, width)
        hidden = self._run_top(self.tuned_model, hidden, attention_mask, self.cached_depth)
        return self.encoder.pool(hidden, attention_mask)

    def _fill_bottom_cache(self) -> None:
        # Ordinary tensors even when first needed inside an inference-mode evaluation (the sanity check): training
        # later saves them for the backward pass of the layers they feed, which inference tensors cannot be.
        with torch.inference_mode(False), torch.no_grad():
            device = self.lengths.device
            dtype = str(next(self.tuned_model.parameters()).dtype)
            key = layer_states_key(
                self.encoder.weights_sha256, self.cached_depth, self.token_ids, self.lengths, dtype=dtype,
                device=device.type,
            )  # fmt: skip
            states, starts, _ = cached_bottom_states(self.layer_cache_dir, key, self._compute_bottom_cache)
            self.bottom_states, self.bottom_starts = states.to(device), starts.to(device)

    def _compute_bottom_cache(self) -> tuple[torch.Tensor, torch.Tensor]:
        model = self.tuned_model
        was_training = model.training
        model.eval()  # the frozen bottom runs without dropout, like the frozen mode's embedding cache
        order = torch.argsort(self.lengths, descending=True)
        states = []  # real-token rows, items in `order`
        with progress_bar("caching frozen layers", total=len(order)) as advance:
            for start in range(0, len(order), self.chunk_size):
                chunk = order[start : start + self.chunk_size]
                lengths = self.lengths[chunk]
                mask = torch.arange(int(lengths.max()), device=chunk.device) < lengths.unsqueeze(1)
                hidden = run_bottom(model, self.token_ids[chunk, : mask.shape[1]], mask.long(), self.cached_depth)
                states.append(hidden[mask])
                advance(len(chunk))
        model.train(was_training)
        sorted_lengths = self.lengths[order]
        starts = torch.empty_like(self.lengths)
        starts[order] = torch.cumsum(sorted_lengths, 0) - sorted_lengths
        return torch.cat(states) if states else torch.empty(0, self.dim, device=self.lengths.device), starts

    def drop_bottom_cache(self) -> None:
        self.bottom_states = None
        self.bottom_starts = None

    # -- the TrainableEncoder protocol (lmrec.encoders.tuning.base) ---------------------------------------------
    def frozen_state_keys(self) -> set[str]:
        """Weights that do not train: identical to the encoder folder's files, so checkpoints leave them out."""
        return {name for name, parameter in self.named_parameters() if not parameter.requires_grad}

    def base_weights_sha256(self) -> str:
        return self.encoder.weights_sha256

    def all_items(self) -> torch.Tensor:
        """Every item's vector, in the same length-sorted chunks as a training step."""
        return self(torch.arange(len(self.lengths), device=self.lengths.device))


# -- data-derived constructor arguments (lmrec.config.arguments): the builders decide frozen table or encoder -------
@provides("text_source")
def _text_source(facts: BuildFacts) -> nn.Module:
    """The item text vectors: a frozen cached table, or a trainable encoder (`model/tuning`)."""
    return facts.text_source()


@provides("user_text_source")
def _user_text_source(facts: BuildFacts) -> nn.Module:
    """The users' text vectors: a frozen cached table, or a trainable encoder (`model/tuning`)."""
    return facts.user_text_source()
