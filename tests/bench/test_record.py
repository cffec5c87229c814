"""The shared record writer: provenance fields against values read another way, strict JSON, quick file names."""

from __future__ import annotations

import json
import os
import platform
import subprocess

import pytest
import torch

from lmrec.bench import record
from lmrec.bench.record import PACKAGE_DIR, make_record, non_numbers, read_records, record_path, write_record


def test_provenance_matches_git_and_the_machine():
    made = make_record(
        "demo",
        {"figures": {"x": 1.5}},
        "lmrec-bench run demo",
        False,
        [0.5, 0.4, 0.3],
        "2026-01-01T00:00:00+00:00",
        2.0,
    )
    head = subprocess.run(
        ["git", "-C", str(PACKAGE_DIR), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    if head.returncode == 0:
        assert made["git"]["commit"] == head.stdout.strip()
        assert isinstance(made["git"]["dirty"], bool)
    assert made["machine"]["cores"] == os.cpu_count()
    assert made["machine"]["python"] == platform.python_version()
    assert made["machine"]["torch"] == torch.__version__
    assert made["machine"]["torch_threads"] == torch.get_num_threads()
    assert made["load_average"]["before"] == [0.5, 0.4, 0.3] and len(made["load_average"]["after"]) == 3
    assert all(abs(a - b) < 5 for a, b in zip(made["load_average"]["after"], os.getloadavg(), strict=True))
    assert made["figures"] == {"x": 1.5} and made["date"] == "2026-01-01T00:00:00+00:00"
    assert [field for field in record.RECORD_FIELDS if field not in made] == []


def test_figures_must_be_finite_numbers():
    assert non_numbers({"a": 1, "b": [2.0, {"c": 3}]}) == []
    assert non_numbers({"a": "fast", "b": [1, None], "c": True, "d": float("nan")}) == [
        "figures.a='fast'",
        "figures.b[1]=None",
        "figures.c=True",
        "figures.d=nan",
    ]


def test_quick_records_never_take_a_full_result_name(tmp_path):
    assert record_path(tmp_path, "encode", quick=False) == tmp_path / "encode.json"
    assert record_path(tmp_path, "encode", quick=True) == tmp_path / "encode.quick.json"


def test_written_records_are_strict_json_and_quick_ones_are_not_results(tmp_path):
    full = {"benchmark": "demo", "quick": False, "date": "2026-01-02", "figures": {"x": 1}}
    write_record(full, tmp_path / "demo.json")
    write_record({**full, "quick": True, "date": "2026-01-03"}, tmp_path / "demo.quick.json")
    write_record({**full, "date": "2026-01-01"}, tmp_path / "demo.older.json")
    assert json.loads((tmp_path / "demo.json").read_text()) == full
    assert [r["_file"] for r in read_records(tmp_path)] == ["demo.older.json", "demo.json"]  # oldest first
    with pytest.raises(ValueError):
        write_record({**full, "figures": {"x": float("nan")}}, tmp_path / "nan.json")
