"""A text encoder with pooling, BERT-family or decoder LM: the one place lmrec turns item text into vectors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from lmrec.encoders.loading import is_decoder, load_backbone, load_tokenizer, special_token_frame
from lmrec.encoders.options import check_encoder_options, resolve_dtype
from lmrec.encoders.pooling import pool
from lmrec.encoders.resolve import resolve_encoder, weights_fingerprint
from lmrec.runtime.progress import progress_bar

__all__ = ["TextEncoder", "is_out_of_memory", "pool"]

log = logging.getLogger(__name__)


def is_out_of_memory(err: BaseException) -> bool:
    """A CUDA or host allocation failure, which a smaller batch may avoid (any other error is re-raised)."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


class TextEncoder(nn.Module):
    """HF tokenizer + backbone + pooling, with an optional prompt around each text and a chosen hidden layer.

    `encode` is the bulk path used to build the frozen-embedding cache: texts are tokenized once, sorted by
    length and padded per batch, so no batch pays for the longest text in the catalogue; a batch that runs out of
    memory is retried at half the size. Batches are right-padded: a decoder's position ids then count each text
    from 0, and every pooling reads the attention mask.
    """

    def __init__(
        self,
        name_or_path: str = "sentence-transformers/all-MiniLM-L6-v2",
        pooling: str = "mean",
        max_length: int = 128,
        normalize: bool = False,
        revision: str | None = None,
        trust_remote_code: bool = False,
        gguf_file: str | None = None,
        dtype: str = "float32",
        quantization: str | None = None,
        layer: int | None = None,
        prompt: str | None = None,
        append_eos: bool | None = None,
    ) -> None:
        super().__init__()
        check_encoder_options(
            pooling=pooling, max_length=max_length, dtype=dtype, quantization=quantization, layer=layer, prompt=prompt
        )
        dtype = resolve_dtype(dtype)
        self.files = resolve_encoder(name_or_path, revision, gguf_file or None)
        self.model_dir = self.files.folder
        self.name_or_path = name_or_path
        self.pooling = pooling
        self.max_length = max_length
        self.normalize = normalize
        self.layer = layer
        self.prompt = prompt
        self.tokenizer = load_tokenizer(self.files, trust_remote_code)
        self.model = load_backbone(self.files, dtype, quantization, trust_remote_code)
        self.is_decoder = is_decoder(self.model.config)
        # A decoder's last position is the only one that has read the whole text; an end-of-sequence token there
        # gives every text the same final token to summarise into (as SGPT and e5-mistral do).
        self.append_eos = (
            (self.is_decoder and self.tokenizer.eos_token_id is not None) if append_eos is None else bool(append_eos)
        )
        self.truncated = 0  # texts cut at max_length by the last `tokenize` call
        self.eval()  # a loaded encoder is used for inference until a trainer asks for train mode

    @functools.cached_property
    def weights_sha256(self) -> str:
        """Identity of the pretrained weights, recorded in checkpoints that leave frozen weights out."""
        return weights_fingerprint(self.files)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.layer is None:
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        else:  # hidden_states[0] is the embedding output, [-1] the last layer's (what last_hidden_state is)
            outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            hidden = outputs.hidden_states[self.layer]
        return self.pool(hidden, attention_mask)

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The item vector from the hidden states (also used when the model ran in two parts)."""
        vectors = pool(hidden, attention_mask, self.pooling).float()
        return nn.functional.normalize(vectors, dim=-1) if self.normalize else vectors

    def tokenize(self, texts: Sequence[str]) -> dict[str, list[list[int]]]:
        """Token ids per text: the tokenizer's special tokens around prompt prefix + text + prompt suffix (+ EOS).

        Only the text is truncated, never the prompt or the special tokens, so a long text keeps the instruction
        that follows it. The prompt's parts are tokenized on their own, so a BPE merge across the prompt/text
        boundary does not happen (the same for every item).
        """
        head, tail = special_token_frame(self.tokenizer)
        prefix, suffix = self.prompt.split("{text}") if self.prompt else ("", "")
        pre, post = (self._bare(part) for part in (prefix, suffix))
        eos = [self.tokenizer.eos_token_id] if self.append_eos else []
        if eos and tail[-1:] == eos:  # the tokenizer already ends every text with EOS
            eos = []
        budget = self.max_length - len(head) - len(pre) - len(post) - len(tail) - len(eos)
        if budget < 1:
            from lmrec.errors import ConfigError

            raise ConfigError(
                f"model.encoder.max_length={self.max_length} leaves no room for the text after the prompt and "
                f"special tokens ({self.max_length - budget} tokens)"
            )
        bodies = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if len(texts) else []
        self.truncated = sum(len(body) > budget for body in bodies)
        return {"input_ids": [head + pre + body[:budget] + post + tail + eos for body in bodies]}

    def _bare(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def batches(
        self, ids: list[list[int]], batch_size: int, skip: frozenset[int] = frozenset()
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(rows, vectors) over `ids` longest first, in batches of at most `batch_size` (halved on out-of-memory),
        leaving out the rows in `skip` (already encoded by a run that was stopped)."""
        device = next(self.model.parameters()).device
        order = [i for i in sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True) if i not in skip]
        pad_id = self.tokenizer.pad_token_id or 0
        start = 0
        while start < len(order):
            rows = order[start : start + batch_size]
            width = len(ids[rows[0]])
            input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            attention = torch.zeros((len(rows), width), dtype=torch.long)
            for j, row in enumerate(rows):
                input_ids[j, : len(ids[row])] = torch.tensor(ids[row])
                attention[j, : len(ids[row])] = 1
            try:
                vectors = self(input_ids.to(device), attention.to(device))
            except (torch.OutOfMemoryError, RuntimeError) as err:
                if not is_out_of_memory(err) or batch_size == 1:
                    raise
                batch_size = max(1, batch_size // 2)
                log.warning("encoding ran out of memory; retrying with batches of %d texts", batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            yield rows, vectors.float().cpu()
            start += len(rows)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 256, show_progress: bool = True) -> torch.Tensor:
        """Vectors for `texts` in their original order, as float32 on CPU."""
        if len(texts) == 0:
            return torch.empty(0, self.dim)
        was_training = self.training
        self.eval()
        ids = self.tokenize(texts)["input_ids"]
        out = torch.empty(len(ids), self.dim)
        with progress_bar("encoding item texts", total=len(ids), enabled=show_progress, unit="texts") as advance:
            for rows, vectors in self.batches(ids, batch_size):
                out[torch.tensor(rows)] = vectors
                advance(len(rows))
        self.train(was_training)
        return out
