"""A BERT-family text encoder with pooling: the one place lmrec turns item text into vectors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from lmrec.encoders.options import POOLINGS, check_encoder_options
from lmrec.encoders.resolve import resolve_model_dir, weights_fingerprint
from lmrec.runtime.progress import progress_bar

log = logging.getLogger(__name__)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Mean over real tokens (what sentence-transformers' MiniLM was trained with) or the [CLS] vector."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
    raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")


class TextEncoder(nn.Module):
    """HF AutoModel + AutoTokenizer + pooling.

    `encode` is the bulk path used to build the frozen-embedding cache: texts are tokenized once, sorted by
    length and padded per batch, so no batch pays for the longest text in the catalogue.
    """

    def __init__(
        self,
        name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2",
        pooling: str = "mean",
        max_length: int = 128,
        normalize: bool = False,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        super().__init__()
        check_encoder_options(pooling, max_length)
        self.model_dir: Path = resolve_model_dir(name_or_path, revision)
        self.name_or_path = name_or_path
        self.pooling = pooling
        self.max_length = max_length
        self.normalize = normalize
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, trust_remote_code=trust_remote_code)
        self.model = AutoModel.from_pretrained(self.model_dir, trust_remote_code=trust_remote_code)
        self.eval()  # a loaded encoder is used for inference until a trainer asks for train mode

    @functools.cached_property
    def weights_sha256(self) -> str:
        """Identity of the pretrained weights, recorded in checkpoints that leave frozen weights out."""
        return weights_fingerprint(self.model_dir)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.pool(hidden, attention_mask)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The item vector from the last hidden states (also used when the model ran in two parts)."""
        vectors = pool(hidden, attention_mask, self.pooling)
        return nn.functional.normalize(vectors, dim=-1) if self.normalize else vectors

    def tokenize(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=False)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 256, show_progress: bool = True) -> torch.Tensor:
        """Vectors for `texts` in their original order, as float32 on CPU."""
        if len(texts) == 0:
            return torch.empty(0, self.dim)
        was_training = self.training
        self.eval()
        device = next(self.model.parameters()).device
        ids = self.tokenize(texts)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        out = torch.empty(len(ids), self.dim)
        pad_id = self.tokenizer.pad_token_id or 0
        with progress_bar("encoding item texts", total=len(ids), enabled=show_progress) as advance:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                width = len(ids[rows[0]])
                input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                attention = torch.zeros((len(rows), width), dtype=torch.long)
                for j, row in enumerate(rows):
                    seq = ids[row]
                    input_ids[j, : len(seq)] = torch.tensor(seq)
                    attention[j, : len(seq)] = 1
                vectors = self(input_ids.to(device), attention.to(device))
                out[torch.tensor(rows)] = vectors.float().cpu()
                advance(len(rows))
        self.train(was_training)
        return out
