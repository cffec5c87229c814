from __future__ import annotations

import logging
import re

import pytest
import torch

from lmrec.encoders.embedding_cache import embedding_key, load_or_encode
from lmrec.encoders.resolve import PACKAGED_MINILM_SHA256, packaged_minilm_path, resolve_model_dir, weights_fingerprint
from lmrec.encoders.text_encoder import TextEncoder, pool

TEXTS = ["Heat (1995). Genres: Action, Crime", "Up", "A much longer text about a film with many many words in it", ""]


def test_mean_pooling_ignores_padding():
    hidden = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    pooled = pool(hidden, mask, "mean")
    assert torch.allclose(pooled[0], hidden[0, :2].mean(0))
    assert torch.allclose(pooled[1], hidden[1].mean(0))
    assert torch.equal(pool(hidden, mask, "cls"), hidden[:, 0])


def test_length_sorted_batched_encoding_equals_one_text_at_a_time(tiny_bert_dir):
    encoder = TextEncoder(str(tiny_bert_dir), pooling="mean", max_length=16)
    batched = encoder.encode(TEXTS, batch_size=3, show_progress=False)
    for row, text in enumerate(TEXTS):
        tokens = encoder.tokenizer([text], truncation=True, max_length=16, return_tensors="pt")
        with torch.no_grad():
            single = encoder(tokens["input_ids"], tokens["attention_mask"])
        assert torch.allclose(batched[row], single[0], atol=1e-5), text


def test_normalize_gives_unit_vectors(tiny_bert_dir):
    encoder = TextEncoder(str(tiny_bert_dir), pooling="cls", normalize=True)
    vectors = encoder.encode(TEXTS, show_progress=False)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)


def test_bad_encoder_options_raise(tiny_bert_dir, tmp_path):
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(str(tiny_bert_dir), pooling="max")
    with pytest.raises(FileNotFoundError, match="config.json"):
        TextEncoder(str(tmp_path))


def test_packaged_minilm_resolves_offline_and_is_the_hub_file():
    folder = resolve_model_dir("sentence-transformers/all-MiniLM-L6-v2")
    assert folder == packaged_minilm_path()
    assert weights_fingerprint(folder) == PACKAGED_MINILM_SHA256


def test_embedding_cache_hit_on_second_call_and_key_changes(tiny_bert_dir, tmp_path, caplog):
    cfg = {"name_or_path": str(tiny_bert_dir), "pooling": "mean", "max_length": 16, "normalize": False}
    with caplog.at_level(logging.INFO, logger="lmrec.encoders.embedding_cache"):
        first, hit1 = load_or_encode(cfg, TEXTS, "tpl", tmp_path)
        second, hit2 = load_or_encode(cfg, TEXTS, "tpl", tmp_path)
    assert (hit1, hit2) == (False, True)
    assert torch.equal(first, second)
    assert "cache hit" in caplog.text
    files = list((tmp_path / "item_embeddings").glob("*.safetensors"))
    assert len(files) == 1 and not list((tmp_path / "item_embeddings").glob("*.tmp"))
    base = embedding_key(cfg, TEXTS, "tpl").digest()
    assert embedding_key({**cfg, "max_length": 8}, TEXTS, "tpl").digest() != base
    assert embedding_key({**cfg, "pooling": "cls"}, TEXTS, "tpl").digest() != base
    assert embedding_key(cfg, TEXTS, "other template").digest() != base
    assert embedding_key(cfg, TEXTS[:-1], "tpl").digest() != base
    assert embedding_key({**cfg, "normalize": True}, TEXTS, "tpl").digest() != base


def test_embedding_key_covers_the_tokenizer(tiny_bert_dir, tmp_path):
    import shutil

    copy = tmp_path / "enc"
    shutil.copytree(tiny_bert_dir, copy)
    cfg = {"name_or_path": str(copy), "pooling": "mean", "max_length": 16}
    before = embedding_key(cfg, TEXTS, "tpl").digest()
    (copy / "tokenizer_config.json").write_text(
        (copy / "tokenizer_config.json").read_text().replace("{", '{"x": 1, ', 1)
    )
    assert embedding_key(cfg, TEXTS, "tpl").digest() != before


def test_damaged_cache_file_is_re_encoded(tiny_bert_dir, tmp_path):
    cfg = {"name_or_path": str(tiny_bert_dir), "pooling": "mean", "max_length": 16}
    first, _ = load_or_encode(cfg, TEXTS, "tpl", tmp_path)
    (path,) = (tmp_path / "item_embeddings").glob("*.safetensors")
    path.write_bytes(b"garbage")
    again, hit = load_or_encode(cfg, TEXTS, "tpl", tmp_path)
    assert not hit and torch.allclose(first, again)


def test_progress_is_logged_in_tenths_when_not_on_a_terminal(caplog):
    from lmrec.runtime.progress import progress_bar

    with caplog.at_level(logging.INFO, logger="lmrec.runtime.progress"), progress_bar("encoding", total=100) as advance:
        for _ in range(25):
            advance(4)
    lines = [r.getMessage() for r in caplog.records if r.name == "lmrec.runtime.progress"]
    assert [line.split(",")[0] for line in lines] == [
        f"encoding: {n}/100" for n in (12, 20, 32, 40, 52, 60, 72, 80, 92, 100)
    ]
    assert all(re.search(r", [0-9.]+ items/s, [0-9]+ s left$", line) for line in lines), lines


def test_unknown_hub_model_offline_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="could not load encoder 'no-such-org/no-such-model'"):
        resolve_model_dir("no-such-org/no-such-model")
