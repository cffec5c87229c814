"""Where a text item tower gets its item vectors: a frozen cached table, or an encoder that is being tuned.

Both answer the same two questions — vectors for some items (`forward`) and for the whole catalogue
(`all_items`) — so towers, heads and the module do not care which tuning mode is active.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lmrec.encoders.text_encoder import TextEncoder
from lmrec.encoders.tuning import FullTuning, Tuning


class FrozenTextTable(nn.Module):
    """Cached frozen-encoder vectors, one row per item.

    A persistent buffer, so a checkpoint is self-contained: evaluating it gives the training run's numbers even on
    a machine whose encoder would round differently.
    """

    def __init__(self, embeddings: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("embeddings", embeddings.float().clone(), persistent=True)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.embeddings[items]

    def all_items(self) -> torch.Tensor:
        return self.embeddings


class TunedTextEncoder(nn.Module):
    """A trainable encoder over the catalogue's pre-tokenized texts.

    Texts are tokenized once at construction and kept as a padded id matrix on the model's device, so a
    training step only gathers rows: no tokenizer call, no host-to-device copy. `forward` encodes exactly the
    items it is given; the module passes each step's distinct items, so a popular item costs one encoder pass.
    """

    def __init__(
        self,
        encoder: TextEncoder,
        texts: Sequence[str],
        eval_batch_size: int = 256,
        tuning: Tuning | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.eval_batch_size = int(eval_batch_size)
        self.tuning = tuning or FullTuning()
        if compile:
            # dynamic=True: batch size and padded length change every step; without it each shape recompiles.
            encoder.model = torch.compile(encoder.model, dynamic=True)
        token_lists = encoder.tokenize(texts)["input_ids"]
        lengths = torch.tensor([len(ids) for ids in token_lists], dtype=torch.long)
        width = int(lengths.max()) if len(lengths) else 1
        pad_id = encoder.tokenizer.pad_token_id or 0
        token_ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
        for row, ids in enumerate(token_lists):
            token_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        # Data, not weights: rebuilt from the texts on load, so they stay out of checkpoints.
        self.register_buffer("token_ids", token_ids, persistent=False)
        self.register_buffer("lengths", lengths, persistent=False)

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def tuned_model(self) -> nn.Module:
        """The transformers/peft model the tuning mode manages (never the torch.compile wrapper)."""
        return getattr(self.encoder.model, "_orig_mod", self.encoder.model)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        lengths = self.lengths[items]
        width = int(lengths.max()) if len(items) else 1  # pad to this batch's longest text, not the catalogue's
        input_ids = self.token_ids[items, :width]
        attention_mask = (torch.arange(width, device=items.device) < lengths.unsqueeze(1)).long()
        return self.encoder(input_ids, attention_mask)

    def on_fit_start(self, total_steps: int) -> None:
        self.tuning.on_fit_start(self.tuned_model, total_steps)

    def after_optimizer_step(self, global_step: int) -> None:
        self.tuning.after_optimizer_step(self.tuned_model, global_step)

    def regularization(self) -> torch.Tensor | None:
        return self.tuning.regularization(self.tuned_model)

    def all_items(self) -> torch.Tensor:
        """Every item's vector, encoded in length-sorted chunks (so no chunk pays for the longest text)."""
        order = torch.argsort(self.lengths, descending=True)
        chunks = [
            self(order[start : start + self.eval_batch_size]) for start in range(0, len(order), self.eval_batch_size)
        ]
        vectors = torch.cat(chunks) if chunks else torch.empty(0, self.dim, device=self.token_ids.device)
        out = torch.empty_like(vectors)
        out[order] = vectors
        return out
