"""The processed-table cache: keyed by inputs and options, rebuilt when damaged, generic over sources."""

from __future__ import annotations

import json
import logging

from lmrec.data.datamodule import RecDataModule
from tests.data.test_datamodule import _module
from tests.data.test_protocols import TableSource, random_tables


def test_processed_tables_are_cached_and_keyed_by_options(bundled_data, tmp_path, caplog):
    first = _module(bundled_data, tmp_path).prepare()
    with caplog.at_level(logging.INFO, logger="lmrec.data.processed"):
        second = _module(bundled_data, tmp_path).prepare()
    assert not first.cache_hit and second.cache_hit and "cache hit" in caplog.text
    assert first.interactions.equals(second.interactions) and first.items.equals(second.items)
    reseeded = _module(bundled_data, tmp_path, seed=7).prepare()
    assert not reseeded.cache_hit
    assert not reseeded.interactions["split"].equals(first.interactions["split"])
    assert len(list((tmp_path / "processed").iterdir())) == 2


def test_damaged_processed_entry_is_rebuilt(bundled_data, tmp_path):
    first = _module(bundled_data, tmp_path).prepare()
    (entry,) = (tmp_path / "processed").iterdir()
    (entry / "interactions.parquet").write_bytes(b"not parquet")
    again = _module(bundled_data, tmp_path).prepare()
    assert not again.cache_hit and again.interactions.equals(first.interactions)
    assert _module(bundled_data, tmp_path).prepare().cache_hit


def test_every_protocol_option_is_in_the_cache_key_and_entry(tmp_path):
    tables = random_tables(4)
    base = {"kcore": {"user": 2}, "split": {"strategy": "temporal_loo"}}
    variants = [
        {},
        {"kcore": {"user": 3}},
        {"implicit": {"threshold": 4}},
        {"filters": {"min_text_words": 2}},
        {"filters": {"require_text": True}},
        {"split": {"strategy": "temporal_loo", "max_history": 5}},
        {"split": {"strategy": "cold_items", "cold_share": 0.3}},
    ]
    keys = []
    for variant in variants:
        module = RecDataModule(TableSource(tmp_path, *tables), cache_dir=str(tmp_path / "c"), **{**base, **variant})
        keys.append(module.prepare().key)
    assert len(set(keys)) == len(variants)
    entry = tmp_path / "c" / "processed" / keys[5]
    meta = json.loads((entry / "key.json").read_text())
    assert meta["options"]["split_options"]["max_history"] == 5 and meta["options"]["kcore"] == [2, 0]
    assert [step["name"] for step in meta["filters"]] == ["kcore", "max_history"]
