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
    assert len([p for p in (tmp_path / "processed").iterdir() if not p.name.startswith(".")]) == 2  # + hidden locks


def test_damaged_processed_entry_is_rebuilt(bundled_data, tmp_path):
    first = _module(bundled_data, tmp_path).prepare()
    (entry,) = (p for p in (tmp_path / "processed").iterdir() if p.is_dir())
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


def test_an_entry_without_its_manifest_is_rebuilt_once_not_every_run(bundled_data, tmp_path, caplog):
    first = _module(bundled_data, tmp_path).prepare()
    (entry,) = (p for p in (tmp_path / "processed").iterdir() if p.is_dir())
    (entry / "manifest.json").unlink()  # what a write killed before its last step (or an older lmrec) leaves
    with caplog.at_level(logging.INFO, logger="lmrec"):
        again = _module(bundled_data, tmp_path).prepare()
    assert not again.cache_hit and again.interactions.equals(first.interactions)
    assert f"{entry / 'manifest.json'} is missing" in caplog.text and "cached at" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lmrec"):
        assert _module(bundled_data, tmp_path).prepare().cache_hit  # repaired: the next run reads it
    assert "cached at" not in caplog.text and "content check" not in caplog.text


def test_a_killed_writes_temporary_folder_is_removed_when_the_cache_is_next_used(tmp_path):
    import os
    import subprocess
    import sys
    import time

    from lmrec.atomic import ORPHAN_GRACE_S

    root = tmp_path / "c" / "processed"
    root.mkdir(parents=True)
    code = (
        "import os, sys; from pathlib import Path; from lmrec.atomic import publish_dir\n"
        "with publish_dir(Path(sys.argv[1]) / 'somekey') as tmp:\n"
        "    (tmp / 'interactions.parquet').write_bytes(b'half'); os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code, str(root)]).returncode == 9
    (orphan,) = root.iterdir()
    old = time.time() - ORPHAN_GRACE_S - 5
    for path in (orphan, orphan / "interactions.parquet"):
        os.utime(path, (old, old))
    RecDataModule(TableSource(tmp_path, *random_tables(4)), cache_dir=str(tmp_path / "c")).prepare()
    assert not orphan.exists() and len([p for p in root.iterdir() if p.is_dir()]) == 1


#: One job of a sweep: a source whose parse is counted (a line per parse) and slow, so two jobs' builds overlap.
#: Run with `python -c` (no torch import), so two cold interpreters start in about a second.
JOB = """
import json, os, sys, time
from pathlib import Path
import pandas as pd
from lmrec.data.processed import load_processed
from lmrec.data.sources.base import Source, SourceTables

class Pickled(Source):
    item_fields = ("title",)

    def files(self):
        return ["input.txt"]

    def read(self, drop_invalid=False):
        with open(self.root / "parses.txt", "a") as handle:
            handle.write(f"{os.getpid()}\\n")
        time.sleep(1.0)
        return SourceTables(pd.read_pickle(self.root / "i.pkl"), pd.read_pickle(self.root / "t.pkl"))

root = Path(sys.argv[1])
data = load_processed(Pickled(root), root / "c", json.loads((root / "options.json").read_text()))
print(json.dumps([data.cache_hit, data.interactions.to_json()]))
"""


def test_two_processes_building_the_same_entry_build_it_once(tmp_path):
    import subprocess
    import sys

    interactions, items = random_tables(4)
    interactions.to_pickle(tmp_path / "i.pkl")
    items.to_pickle(tmp_path / "t.pkl")
    options = RecDataModule(TableSource(tmp_path, interactions, items)).options  # also writes input.txt
    (tmp_path / "options.json").write_text(json.dumps(options))
    jobs = [subprocess.Popen([sys.executable, "-c", JOB, str(tmp_path)], stdout=subprocess.PIPE) for _ in "ab"]
    outcomes = [json.loads(job.communicate(timeout=120)[0]) for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0]
    assert len((tmp_path / "parses.txt").read_text().splitlines()) == 1  # the second job waited, then read
    assert sorted(hit for hit, _ in outcomes) == [False, True]
    assert outcomes[0][1] == outcomes[1][1]
