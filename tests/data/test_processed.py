"""The processed-table cache: keyed by inputs and options, rebuilt when damaged, generic over sources."""

from __future__ import annotations

import logging

from tests.data.test_datamodule import _module


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
