"""Every registered benchmark's quick mode runs and writes a complete record: none of them can silently rot.

Parametrized over the registry, so a new module under lmrec.bench.suite is tested without touching this file.
The quick runs share one cache folder (processed tables, tiny-encoder embeddings), as runs on one machine do.
"""

from __future__ import annotations

import json
import os

import pytest

from lmrec.bench import registry
from lmrec.bench.cli import main
from lmrec.bench.record import RECORD_FIELDS, non_numbers

NAMES = sorted(registry.load_all())
MACHINE_FIELDS = {"cpu", "cores", "torch_threads", "torch", "python"}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("bench-cache")


def test_the_registry_holds_one_benchmark_per_suite_module():
    import pkgutil

    import lmrec.bench.suite as suite

    modules = {f"lmrec.bench.suite.{m.name}" for m in pkgutil.iter_modules(suite.__path__)}
    assert {bench.module for bench in registry.load_all().values()} == modules
    assert len(NAMES) == len(modules) >= 16
    for bench in registry.load_all().values():
        assert "\n" not in bench.description and len(bench.description) <= 110, bench.name


@pytest.mark.parametrize("name", NAMES)
def test_quick_run_writes_a_complete_record(name, tmp_path, shared_cache):
    code = main(["run", name, "--quick", "--out", str(tmp_path), "--cache-dir", str(shared_cache)])
    assert code == 0
    assert not (tmp_path / f"{name}.json").exists()  # a quick run never takes a full result's file name
    record = json.loads((tmp_path / f"{name}.quick.json").read_text())
    assert [field for field in RECORD_FIELDS if field not in record] == []
    assert record["benchmark"] == name and record["quick"] is True
    assert record["command"].startswith(f"lmrec-bench run {name} --quick")
    assert record["figures"] and non_numbers(record["figures"]) == []
    assert set(record["machine"]) >= MACHINE_FIELDS and record["machine"]["cores"] == os.cpu_count()
    assert set(record["load_average"]) == {"before", "after"} and len(record["load_average"]["after"]) == 3
    assert {"commit", "dirty"} <= set(record["git"])
    if registry.get(name).reference:  # measured where importable, and the record says which it was
        reference = record["reference"]
        assert reference == "not installed" or {"name", "version"} <= set(reference)
    table = registry.get(name).table([{**record, "_file": "x.json"}])
    assert table.startswith("| run") and table.count("\n") >= 2  # the docs' renderer reads these very figures
