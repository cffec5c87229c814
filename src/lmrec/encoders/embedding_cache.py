"""On-disk cache of frozen item text embeddings.

A frozen encoder gives the same vector for the same text every run, so we encode the catalogue once and train
against the stored matrix: training then never runs BERT. The key covers everything that changes the vectors:
the weights (a hash of the weight files), the texts themselves (so template and data changes are covered),
max length, pooling and normalisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lmrec.atomic import atomic_path
from lmrec.encoders.resolve import canonical_name, resolve_model_dir, tokenizer_fingerprint, weights_fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingKey:
    """Everything that determines the cached vectors; its hash names the cache file."""

    model: str
    weights_sha256: str
    tokenizer_sha256: str
    texts_sha256: str
    template: str
    max_length: int
    pooling: str
    normalize: bool

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:32]


def texts_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def embedding_key(encoder_cfg: dict, texts: Sequence[str], template: str) -> EmbeddingKey:
    """Build the key without loading the model, so a warm cache never pays for model start-up."""
    model_dir = resolve_model_dir(encoder_cfg["name_or_path"], encoder_cfg.get("revision"))
    return EmbeddingKey(
        model=canonical_name(str(encoder_cfg["name_or_path"])),
        weights_sha256=weights_fingerprint(model_dir),
        tokenizer_sha256=tokenizer_fingerprint(model_dir),
        texts_sha256=texts_fingerprint(texts),
        template=template,
        max_length=int(encoder_cfg.get("max_length", 128)),
        pooling=str(encoder_cfg.get("pooling", "mean")),
        normalize=bool(encoder_cfg.get("normalize", False)),
    )


def load_or_encode(
    encoder_cfg: dict,
    texts: Sequence[str],
    template: str,
    cache_dir: Path,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, bool]:
    """Item embeddings for `texts` (one row per text) and whether they came from the cache."""
    key = embedding_key(encoder_cfg, texts, template)
    path = Path(cache_dir) / "item_embeddings" / f"{key.digest()}.safetensors"
    if path.is_file():
        cached = _read_verified(path, key, len(texts))
        if cached is not None:
            log.info("item embedding cache hit: %s (%d x %d)", path, *cached.shape)
            return cached, True
    log.info("item embedding cache miss: encoding %d texts with %s", len(texts), key.model)
    from lmrec.encoders.text_encoder import TextEncoder  # imported late: transformers start-up is slow

    encoder_kwargs = {k: v for k, v in encoder_cfg.items() if k != "_target_"}
    encoder = TextEncoder(**encoder_kwargs).to(device)
    embeddings = encoder.encode(texts, batch_size=batch_size)
    _write_atomic(path, embeddings, key)
    log.info("item embeddings cached at %s", path)
    return embeddings, False


def _read_verified(path: Path, key: EmbeddingKey, num_texts: int) -> torch.Tensor | None:
    """Return the stored matrix only if its metadata matches the key; a stale or torn file is re-encoded."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        tensor = load_file(str(path))["embeddings"]
    except Exception as err:  # a damaged file is a cache miss, not a crash
        log.warning("ignoring unreadable embedding cache %s: %s", path, err)
        return None
    if meta.get("key") != json.dumps(asdict(key), sort_keys=True) or tensor.shape[0] != num_texts:
        log.warning("embedding cache %s does not match its key; re-encoding", path)
        return None
    return tensor


def _write_atomic(path: Path, embeddings: torch.Tensor, key: EmbeddingKey) -> None:
    with atomic_path(path) as tmp:
        save_file(
            {"embeddings": embeddings.contiguous()}, str(tmp), metadata={"key": json.dumps(asdict(key), sort_keys=True)}
        )
