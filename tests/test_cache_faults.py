"""Cache faults: one flipped byte at any offset of any cache file is found, the entry rebuilt, the original served.

For each file an entry consists of (the processed tables and their key.json, the item-embedding file, its partial
parts, the frozen-layer states, and every manifest), 20 seeded random offsets each: the byte there is changed,
the cache is read again, and the test asserts a warning named the file, the entry was rebuilt (no cache hit),
and what was served equals the clean content.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import torch

from lmrec.cache_integrity import sidecar
from lmrec.data.datamodule import RecDataModule
from lmrec.encoders import embedding_cache
from lmrec.encoders.embedding_cache import embedding_key, load_or_encode
from lmrec.encoders.layer_cache import LAYER_CACHE, cached_bottom_states
from lmrec.encoders.resumable_encoding import PartialEncoding
from tests.data.test_protocols import TableSource, random_tables

FLIPS = 20


def _flip(path: Path, rng: random.Random) -> int:
    """Change one byte of `path` (xor with a random non-zero value); returns its offset."""
    data = bytearray(path.read_bytes())
    offset = rng.randrange(len(data))
    data[offset] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))
    return offset


@pytest.mark.parametrize(
    "name", ["interactions.parquet", "users.parquet", "items.parquet", "key.json", "manifest.json"]
)
def test_every_flipped_byte_of_a_processed_entry_is_found(tmp_path, caplog, name):
    source = TableSource(tmp_path, *random_tables(4, n=400, users=20, items=40))

    def prepare():
        return RecDataModule(source, cache_dir=str(tmp_path / "c")).prepare()

    clean = prepare()
    entry = tmp_path / "c" / "processed" / clean.key
    rng = random.Random(f"processed/{name}")
    for _ in range(FLIPS):
        offset = _flip(entry / name, rng)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lmrec"):
            again = prepare()
        assert not again.cache_hit and f"{entry / name}" in caplog.text, (name, offset)
        assert again.interactions.equals(clean.interactions) and again.items.equals(clean.items), (name, offset)
        assert again.users.equals(clean.users) and again.filters == clean.filters, (name, offset)
    assert prepare().cache_hit


TEXTS = [f"item {i}" for i in range(12)]


@pytest.mark.parametrize("which", ["matrix file", "manifest"])
def test_every_flipped_byte_of_an_embedding_entry_is_found(tiny_bert_dir, tmp_path, monkeypatch, caplog, which):
    cfg = {"name_or_path": str(tiny_bert_dir), "pooling": "mean", "max_length": 16}
    clean = torch.randn(len(TEXTS), 32, generator=torch.Generator().manual_seed(0))
    encodings = []

    def fake_encoding(*args, **kwargs):  # the cache is under test, not the encoder: a fixed matrix, counted
        encodings.append(1)
        return clean.clone(), 0, {"truncated": 0, "max_length": 16}

    monkeypatch.setattr(embedding_cache, "_encode_in_parts", fake_encoding)
    load_or_encode(cfg, TEXTS, "t", tmp_path)
    matrix = tmp_path / "item_embeddings" / f"{embedding_key(cfg, TEXTS, 't').digest()}.safetensors"
    target = matrix if which == "matrix file" else sidecar(matrix)
    rng = random.Random(f"embeddings/{which}")
    for flip in range(FLIPS):
        offset = _flip(target, rng)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lmrec"):
            vectors, hit = load_or_encode(cfg, TEXTS, "t", tmp_path)
        assert not hit and len(encodings) == flip + 2 and f"{target}" in caplog.text, offset
        assert torch.equal(vectors, clean), offset
    vectors, hit = load_or_encode(cfg, TEXTS, "t", tmp_path)
    assert hit and torch.equal(vectors, clean) and len(encodings) == FLIPS + 1


@pytest.mark.parametrize("which", ["part file", "manifest"])
def test_every_flipped_byte_of_a_partial_encoding_is_found(tmp_path, caplog, which):
    parts = PartialEncoding(tmp_path / "entry.safetensors", flush_rows=4)
    vectors = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    rng = random.Random(f"parts/{which}")
    for _ in range(FLIPS):
        parts.remove()
        parts.add("k", [0, 1, 2, 3], vectors[:4])  # part-00000
        parts.add("k", [4, 5, 6, 7], vectors[4:])  # part-00001
        first = parts.folder / "part-00000.safetensors"
        target = first if which == "part file" else sidecar(first)
        offset = _flip(target, rng)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lmrec"):
            done = parts.load("k", 8)
        assert list(done) == [(4, 5, 6, 7)] and str(first) in caplog.text, offset  # the damaged part is re-encoded
        assert torch.equal(done[(4, 5, 6, 7)], vectors[4:]) and not first.exists(), offset


@pytest.mark.parametrize("name", ["states.safetensors", "manifest.json"])
def test_every_flipped_byte_of_a_frozen_layer_entry_is_found(tmp_path, caplog, name):
    calls = []

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(1)
        return torch.randn(30, 8, generator=torch.Generator().manual_seed(2)), torch.arange(0, 30, 3)

    clean, clean_starts, _ = cached_bottom_states(tmp_path, "k", compute)
    target = tmp_path / LAYER_CACHE / "k" / name
    rng = random.Random(f"layers/{name}")
    for flip in range(FLIPS):
        offset = _flip(target, rng)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lmrec"):
            states, starts, hit = cached_bottom_states(tmp_path, "k", compute)
        assert not hit and len(calls) == flip + 2 and f"{target}" in caplog.text, offset
        assert torch.equal(states, clean) and torch.equal(starts, clean_starts), offset
    assert cached_bottom_states(tmp_path, "k", compute)[2]
