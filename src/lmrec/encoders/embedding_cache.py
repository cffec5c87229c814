"""On-disk cache of frozen item text embeddings: keyed by what makes the vectors, verified by what they hold.

A frozen encoder gives the same vector for the same text every run, so we encode the catalogue once and train
against the stored matrix: training then never runs the language model. The key covers everything that changes
the vectors: the weights (a hash of the weight files, GGUF included), the texts themselves (so template and data
changes are covered), max length, pooling, normalisation, dtype or quantisation, hidden layer, prompt and EOS.

The file also records the SHA-256 of its matrix, and a manifest beside it (`lmrec.cache_integrity`, written last)
the SHA-256 of the whole file, header included; both are checked on every read, so a damaged file is re-encoded
rather than served, and a file without its manifest (an interrupted write) is never trusted unchecked. A large
catalogue is encoded in parts that are saved as they finish (`resumable_encoding`), so a killed encoding resumes where
it stopped. A file lock makes concurrent jobs that need the same entry encode it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lmrec.atomic import atomic_path, remove_stale_temps
from lmrec.cache_integrity import entry_lock, remove_entry, seal_file, sidecar, verified_entry
from lmrec.encoders.resolve import canonical_name, encoder_files, tokenizer_fingerprint, weights_fingerprint
from lmrec.encoders.resumable_encoding import PartialEncoding
from lmrec.errors import ConfigError
from lmrec.runtime.resources import peak_memory_mb, reset_peak_memory

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
    dtype: str = "float32"
    quantization: str | None = None
    layer: int | None = None
    prompt: str | None = None
    append_eos: bool | None = None

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:32]


def texts_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def tensor_sha256(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's bytes: catches any flipped byte of the stored matrix."""
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()


def embedding_key(encoder_cfg: dict, texts: Sequence[str], template: str) -> EmbeddingKey:
    """Build the key without loading the model, so a warm cache never pays for model start-up."""
    files = encoder_files(encoder_cfg)
    return EmbeddingKey(
        model=canonical_name(str(encoder_cfg["name_or_path"])),
        weights_sha256=weights_fingerprint(files),
        tokenizer_sha256=tokenizer_fingerprint(files),
        texts_sha256=texts_fingerprint(texts),
        template=template,
        max_length=int(encoder_cfg.get("max_length", 128)),
        pooling=str(encoder_cfg.get("pooling", "mean")),
        normalize=bool(encoder_cfg.get("normalize", False)),
        dtype=str(encoder_cfg.get("dtype") or "float32"),
        quantization=encoder_cfg.get("quantization"),
        layer=encoder_cfg.get("layer"),
        prompt=encoder_cfg.get("prompt"),
        append_eos=encoder_cfg.get("append_eos"),
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
    embeddings, report = cached_embeddings(encoder_cfg, texts, template, cache_dir, batch_size, device)
    return embeddings, bool(report["cache_hit"])


def cached_embeddings(
    encoder_cfg: dict,
    texts: Sequence[str],
    template: str,
    cache_dir: Path,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, dict]:
    """Item embeddings and the encoding's report: what it cost when the entry was built (seconds, texts/s, peak
    memory, device), kept in the entry so a cache hit still reports it, and whether this call hit the cache."""
    key = embedding_key(encoder_cfg, texts, template)
    path = Path(cache_dir) / "item_embeddings" / f"{key.digest()}.safetensors"
    with entry_lock(path):  # a second job waits here, then reads what the first one wrote
        remove_stale_temps(PartialEncoding(path).folder)
        cached = _read_verified(path, key, len(texts))
        if cached is not None:
            log.info("item embedding cache hit: %s (%d x %d)", path, *cached[0].shape)
            return cached[0], {**cached[1], "cache_hit": True}
        reset_peak_memory(torch.device(device))
        started = time.perf_counter()
        embeddings, resumed, counts = _encode_in_parts(encoder_cfg, texts, key, path, batch_size, device)
        seconds = time.perf_counter() - started
        report = {
            "encode_seconds": round(seconds, 3),
            "texts_per_second": round((len(texts) - resumed) / max(seconds, 1e-9), 2),
            "encode_peak_memory_mb": round(peak_memory_mb(torch.device(device)), 1),
            "encode_device": str(device),
            "texts": len(texts),
            "resumed_texts": resumed,
            **counts,  # texts cut at max_length: a cache hit warns about them again (FrozenTextTable)
        }
        _write_atomic(path, embeddings, key, report)
        PartialEncoding(path).remove()
    log.info("item embeddings cached at %s (%.1f texts/s)", path, report["texts_per_second"])
    return embeddings, {**report, "cache_hit": False}


def _encode_in_parts(
    encoder_cfg: dict, texts: Sequence[str], key: EmbeddingKey, path: Path, batch_size: int, device
) -> tuple[torch.Tensor, int, dict[str, int]]:
    """The matrix, how many of its rows an earlier, stopped run had already encoded, and how many texts were cut
    at the encoder's max_length."""
    from lmrec.encoders.text_encoder import TextEncoder  # imported late: transformers start-up is slow

    partial = PartialEncoding(path)
    done = partial.load(key.digest(), len(texts))
    skip = frozenset(int(r) for rows in done for r in rows)
    log.info(
        "item embedding cache miss: encoding %d texts with %s%s",
        len(texts) - len(skip),
        key.model,
        f" ({len(skip)} already encoded by an earlier run)" if skip else "",
    )
    encoder = TextEncoder(**{k: v for k, v in encoder_cfg.items() if k not in ("_target_", "threads")}).to(device)
    ids = encoder.tokenize(texts)["input_ids"]
    if encoder.truncated:
        log.warning(
            "%d of %d item texts (%.1f%%) were cut at model.encoder.max_length=%d tokens",
            encoder.truncated,
            len(texts),
            100 * encoder.truncated / max(len(texts), 1),
            encoder.max_length,
        )
    out = torch.empty(len(texts), encoder.dim)
    for rows, vectors in done.items():
        out[torch.tensor(rows)] = vectors
    from lmrec.runtime.progress import progress_bar

    with (
        encoding_threads(encoder_cfg.get("threads")),
        torch.inference_mode(),
        progress_bar("encoding item texts", len(texts), unit="texts", completed=len(skip)) as advance,
    ):
        for rows, vectors in encoder.batches(ids, batch_size, skip):
            out[torch.tensor(rows)] = vectors
            partial.add(key.digest(), rows, vectors)
            advance(len(rows))
    partial.flush(key.digest())
    return out, len(skip), {"truncated": int(encoder.truncated), "max_length": int(encoder.max_length)}


@contextmanager
def encoding_threads(threads: int | None) -> Iterator[int]:
    """Torch threads for the one-off encoding pass: every usable core unless `model.encoder.threads` says.

    A run's own thread count is chosen for training steps beside a busy neighbour (short parallel regions, which
    collapse when one thread waits; `lmrec.sweeps.context.job_threads`). Encoding a catalogue is one long pass of
    large matrix products; on an idle machine it runs about twice as fast on two cores as on one, so it takes them
    all and gives the run's setting back afterwards.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"model.encoder.threads={threads!r}; expected a positive number of threads or null")
    before = torch.get_num_threads()
    wanted = threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before)


def _read_verified(path: Path, key: EmbeddingKey, num_texts: int) -> tuple[torch.Tensor, dict] | None:
    """The stored matrix, only if the file's manifest, its key and its content hash match; otherwise None (and a
    damaged file is removed). A file an older lmrec wrote has no manifest: it is sealed once its own check passes."""
    legacy = path.is_file() and not sidecar(path).is_file()
    if not legacy and not verified_entry(path, "item-embedding", single_file=True):
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        tensor = load_file(str(path))["embeddings"]
        report = json.loads(meta.get("report", "{}"))
    except Exception as err:  # a damaged file is a cache miss, not a crash
        log.warning("removing unreadable embedding cache %s: %s", path, err)
        remove_entry(path, single_file=True)
        return None
    if meta.get("key") != json.dumps(asdict(key), sort_keys=True) or tensor.shape[0] != num_texts:
        log.warning("embedding cache %s does not match its key; re-encoding", path)
        return None
    if meta.get("sha256") != tensor_sha256(tensor):
        log.warning("embedding cache %s fails its content check (damaged file); removing it and re-encoding", path)
        remove_entry(path, single_file=True)
        return None
    if legacy:
        seal_file(path)
        log.info("item embedding cache %s had no manifest (an older lmrec wrote it); its check passed, sealed", path)
    return tensor, report


def _write_atomic(path: Path, embeddings: torch.Tensor, key: EmbeddingKey, report: dict) -> None:
    embeddings = embeddings.contiguous()
    metadata = {
        "key": json.dumps(asdict(key), sort_keys=True),
        "sha256": tensor_sha256(embeddings),
        "report": json.dumps(report),
    }
    sidecar(path).unlink(missing_ok=True)  # the old manifest must not vouch for the new file
    with atomic_path(path) as tmp:
        save_file({"embeddings": embeddings}, str(tmp), metadata=metadata)
    seal_file(path)  # last: a file without its manifest is an interrupted write
