"""The item-embedding cache verifies its content, resumes a stopped encoding, and is built once under a lock."""

from __future__ import annotations

import logging
import random
import threading

import pytest
import torch
from safetensors.torch import load_file

from lmrec.encoders import embedding_cache
from lmrec.encoders.embedding_cache import embedding_key, load_or_encode
from lmrec.encoders.resumable_encoding import PartialEncoding
from lmrec.encoders.text_encoder import TextEncoder

TEXTS = [f"movie number {i} with a title of {i % 7} words" for i in range(40)]


def _cfg(folder):
    return {"name_or_path": str(folder), "pooling": "mean", "max_length": 16}


def _entry(cfg, cache):
    return cache / "item_embeddings" / f"{embedding_key(cfg, TEXTS, 't').digest()}.safetensors"


def test_every_flipped_byte_of_the_matrix_is_detected(tiny_bert_dir, tmp_path, caplog):
    cfg = _cfg(tiny_bert_dir)
    clean, _ = load_or_encode(cfg, TEXTS, "t", tmp_path)
    path = _entry(cfg, tmp_path)
    good = path.read_bytes()
    data_start = 8 + int.from_bytes(good[:8], "little")  # safetensors: u64 header size, JSON header, then data
    rng = random.Random(0)
    for offset in rng.sample(range(data_start, len(good)), 20):
        damaged = bytearray(good)
        damaged[offset] ^= 0xFF
        path.write_bytes(bytes(damaged))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="lmrec.encoders.embedding_cache"):
            vectors, hit = load_or_encode(cfg, TEXTS, "t", tmp_path)
        assert not hit and "content check" in caplog.text, offset
        assert torch.equal(vectors, clean)
        assert torch.equal(load_file(str(path))["embeddings"], clean)  # rebuilt (the header's key order may differ)


def test_a_stopped_encoding_resumes_from_its_saved_parts(tiny_bert_dir, tmp_path, monkeypatch, caplog):
    cfg = _cfg(tiny_bert_dir)
    reference = TextEncoder(**cfg).encode(TEXTS, batch_size=4, show_progress=False)
    monkeypatch.setattr(PartialEncoding, "__init__", _small_parts(PartialEncoding.__init__))
    real_batches = TextEncoder.batches
    encoded = []

    def dying_batches(self, ids, batch_size, skip=frozenset()):
        for rows, vectors in real_batches(self, ids, batch_size, skip):
            encoded.extend(rows)
            yield rows, vectors
            if len(encoded) >= 24:
                raise KeyboardInterrupt  # the job is killed after 24 of 40 texts

    monkeypatch.setattr(TextEncoder, "batches", dying_batches)
    with pytest.raises(KeyboardInterrupt):
        load_or_encode(cfg, TEXTS, "t", tmp_path, batch_size=4)
    path = _entry(cfg, tmp_path)
    assert not path.exists() and len(list(PartialEncoding(path).folder.glob("part-*.safetensors"))) == 3  # 3 x 8 saved
    monkeypatch.setattr(TextEncoder, "batches", real_batches)
    with caplog.at_level(logging.INFO, logger="lmrec.encoders.embedding_cache"):
        vectors, hit = load_or_encode(cfg, TEXTS, "t", tmp_path, batch_size=4)
    assert not hit and "encoding 16 texts" in caplog.text and "24 already encoded" in caplog.text
    assert torch.allclose(vectors, reference, atol=1e-6)
    assert not PartialEncoding(path).folder.exists()  # the parts go once the whole matrix is cached


def _small_parts(init):
    def small(self, entry, flush_rows=8):
        init(self, entry, flush_rows=8)

    return small


def test_two_jobs_needing_the_same_entry_encode_it_once(tiny_bert_dir, tmp_path, monkeypatch):
    cfg = _cfg(tiny_bert_dir)
    calls = []
    real = embedding_cache._encode_in_parts

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(embedding_cache, "_encode_in_parts", counting)
    results = []
    threads = [threading.Thread(target=lambda: results.append(load_or_encode(cfg, TEXTS, "t", tmp_path))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and sorted(hit for _, hit in results) == [False, True]
    assert torch.equal(results[0][0], results[1][0])


def test_a_file_without_its_manifest_is_sealed_only_if_its_own_check_passes(tiny_bert_dir, tmp_path, caplog):
    from lmrec.cache_integrity import sidecar

    cfg = _cfg(tiny_bert_dir)
    clean, _ = load_or_encode(cfg, TEXTS, "t", tmp_path)
    path = _entry(cfg, tmp_path)
    sidecar(path).unlink()  # as an older lmrec left it (or a write stopped between the file and its manifest)
    vectors, hit = load_or_encode(cfg, TEXTS, "t", tmp_path)
    assert hit and torch.equal(vectors, clean) and sidecar(path).is_file()
    sidecar(path).unlink()
    damaged = bytearray(path.read_bytes())
    damaged[-5] ^= 0x01  # a byte of the matrix: the header's own SHA-256 still catches it
    path.write_bytes(bytes(damaged))
    with caplog.at_level(logging.WARNING, logger="lmrec.encoders.embedding_cache"):
        vectors, hit = load_or_encode(cfg, TEXTS, "t", tmp_path)
    assert not hit and "content check" in caplog.text and torch.equal(vectors, clean) and sidecar(path).is_file()
