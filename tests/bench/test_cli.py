"""`lmrec-bench list` and `run`'s argument handling, and the fresh-process helper measurements use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmrec.bench import registry
from lmrec.bench.child import call, run_child
from lmrec.bench.cli import checkout_root, main
from tests.conftest import REPO_ROOT


def test_list_names_every_benchmark_with_what_it_needs():
    script = Path(sys.executable).with_name("lmrec-bench")
    done = subprocess.run([str(script), "list"], capture_output=True, text=True, check=True)
    for name, bench in registry.load_all().items():
        assert f"{name}  " in done.stdout and bench.description in done.stdout
    assert done.stdout.count("needs: ") == len(registry.load_all())


def test_run_refuses_unknown_names_and_shows_each_benchmarks_options(capsys):
    assert main(["run", "no_such_benchmark"]) == 2
    with pytest.raises(SystemExit) as exit_:
        main(["run", "encode", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--repeats" in out and "What is measured" in out


def test_records_go_to_the_checkouts_docs_results_by_default(tmp_path):
    assert checkout_root(REPO_ROOT / "src" / "lmrec") == REPO_ROOT
    assert checkout_root(tmp_path) == tmp_path.resolve()


def test_child_runs_a_function_in_a_fresh_process_and_returns_its_result():
    result = run_child("lmrec.bench.child:echo", {"a": [1, 2], "b": "x"})
    assert result["kwargs"] == {"a": [1, 2], "b": "x"} and result["pid"] != os.getpid()
    assert call("lmrec.bench.child:echo", {"a": 1}, fresh=False) == {"kwargs": {"a": 1}, "pid": os.getpid()}
    with pytest.raises(ValueError):
        run_child("os:system", {})
    with pytest.raises(RuntimeError, match="failed in its child process"):
        run_child("lmrec.bench.child:no_such_function", {})
