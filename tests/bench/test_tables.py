"""docs/benchmarks.md's tables are generated from the committed records, and the committed doc is up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lmrec.bench import registry, tables
from lmrec.bench.cli import renderers
from lmrec.bench.record import RECORD_FIELDS, non_numbers, read_records
from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "benchmarks.md"
RESULTS = REPO_ROOT / "docs" / "results"


def test_blocks_are_replaced_from_records_and_check_changes_nothing(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# T\n<!-- bench:demo -->\nstale\n<!-- /bench:demo -->\ntext\n<!-- bench:none -->\n<!-- /bench:none -->\n"
    )
    records = [
        {
            "benchmark": "demo",
            "figures": {"x": 1.25},
            "date": "2026-01-02T03:04:05+00:00",
            "git": {"commit": "abc1234"},
            "_file": "demo.json",
            "transcribed": "from a run",
        }
    ]
    render = {
        "demo": lambda rs: tables.table(
            ["run", "x"], [[tables.run_cell(r), tables.cell(r["figures"]["x"], ".1f")] for r in rs]
        )
    }
    assert tables.update_doc(doc, records, render, check=True) == ["demo", "none"]
    assert "stale" in doc.read_text()  # --check never writes
    assert tables.update_doc(doc, records, render, check=False) == ["demo", "none"]
    text = doc.read_text()
    assert (
        "| 2026-01-02 `abc1234` | 1.2 |" in text
        and "stale" not in text
        and text.endswith("text\n" + text[text.index("<!-- bench:none") :])
    )
    assert "[`demo.json`](results/demo.json) (from a run)" in text
    assert "No full run recorded yet: `lmrec-bench run none`" in text
    assert tables.update_doc(doc, records, render, check=True) == []


def test_cells():
    assert tables.cell(None) == "—" and tables.cell(12345) == "12,345" and tables.cell(0.12345, ".2f") == "0.12"
    assert tables.ratio(1.234) == "1.23×" and tables.ratio(None) == "—"
    assert tables.get({"a": {"b": [1, {"c": 2}]}}, "a.b.1.c") == 2 and tables.get({}, "a.b", 3) == 3


def test_committed_records_are_complete_and_numeric():
    records = read_records(RESULTS)
    assert records
    known = set(renderers())
    for r in records:
        assert [field for field in RECORD_FIELDS if field not in r] == [], r["_file"]
        assert non_numbers(r["figures"]) == [], r["_file"]
        assert r["benchmark"] in known, r["_file"]
        assert r.get("transcribed") or r["command"].startswith("lmrec-bench run"), r["_file"]


def test_every_benchmark_has_a_block_in_the_doc():
    names = set(tables.block_names(DOC.read_text()))
    assert set(registry.load_all()) <= names
    assert names <= set(renderers())


def test_the_committed_doc_is_up_to_date():
    """`lmrec-bench tables --check`, as a user runs it (the console script lmrec installs)."""
    script = Path(sys.executable).with_name("lmrec-bench")
    done = subprocess.run([str(script), "tables", "--check"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
