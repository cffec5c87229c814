"""`lmrec-compare`: the installed command prints the table and writes the report; bad input (runs that cannot be
paired, an unknown baseline or metric, a missing folder, a run without per-user files) is one line on stderr and
exit code 2; a model compared with itself differs significantly nowhere. On fake run folders with known per-user
values (tests/compare/test_report.py writes them), so no training is needed."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from lmrec.cli.compare import main
from lmrec.compare.api import compare, make_options
from lmrec.errors import ConfigError
from tests.compare.test_report import fake_run
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two configurations × two seeds on 30 users, the second better on 20 of them."""
    root = tmp_path_factory.mktemp("compare-cli") / "sweep"
    rng = np.random.default_rng(1)
    for seed in (1, 2):
        a = rng.uniform(0, 0.4, 30)
        b = a + np.r_[np.full(20, 0.2), np.zeros(10)]
        for name, values in (("id", a), ("text", b)):
            fake_run(root / f"{name}{seed}", [f"model/item_tower={name}"], seed, {"ndcg@10": values, "mrr@10": values})
    return root


def test_the_command_prints_the_table_and_writes_the_report(runs, tmp_path):
    out = tmp_path / "report"
    args = [str(runs), "--baseline", "item_tower=id", "--metrics", "ndcg@10", "mrr@10", "--test", "t",
            "--correction", "bh", "--permutations", "100", "--resamples", "100", "--out", str(out)]  # fmt: skip
    result = run_cli("lmrec-compare", args, tmp_path)
    assert "## ndcg@10 (higher is better)" in result.stdout and "## mrr@10 (higher is better)" in result.stdout
    assert "paired t-test" in result.stdout and "Benjamini-Hochberg correction over 4 tests" in result.stdout
    assert "| model/item_tower=text | 2 |" in result.stdout and "†2/2" in result.stdout
    names = {"comparison.md", "comparison.tex", "comparison.json", "comparison.csv", "comparison_metrics.png",
             "comparison_cost.png"}  # fmt: skip
    assert {p.name for p in out.iterdir()} == names
    report = json.loads((out / "comparison.json").read_text())
    assert report["options"]["test"] == "t" and report["metrics"] == ["ndcg@10", "mrr@10"]
    assert (out / "comparison.md").read_text() in result.stdout


def test_the_report_goes_into_the_first_folder_by_default(runs, capsys):
    assert main([str(runs), "--baseline", "item_tower=id", "--permutations", "50", "--resamples", "50"]) == 0
    assert (runs / "compare" / "comparison.md").is_file() and "report written to" in capsys.readouterr().out
    shutil.rmtree(runs / "compare")


def test_runs_evaluated_on_other_data_are_refused_with_one_line_and_exit_code_2(tmp_path):
    values = {"ndcg@10": np.linspace(0, 1, 20)}
    fake_run(tmp_path / "a", ["model=a"], 1, values, data_key="movielens-60-users")
    fake_run(tmp_path / "b", ["model=b"], 1, values, data_key="movielens-40-users")
    result = run_cli("lmrec-compare", [str(tmp_path / "a"), str(tmp_path / "b")], tmp_path, ok=False)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("RunFolderError: ") and "not evaluated on the same data" in lines[0]
    assert "movielens-60-users" in lines[0] and "movielens-40-users" in lines[0]
    assert not (tmp_path / "a" / "compare").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--baseline", "item_tower=bert"], "baseline 'item_tower=bert' matches none of the configurations"),
        (["--baseline", "item_tower"], "matches 2 of the configurations"),
        (["--metrics", "ndcg@100"], "has no column 'ndcg@100'"),
        (["--split", "val"], "has no per_user/val.parquet"),
        (["--alpha", "1.5"], "alpha=1.5"),
    ],
)
def test_bad_input_is_one_logged_line_and_exit_code_2(runs, args, message, caplog):
    with caplog.at_level(logging.ERROR, logger="lmrec"), pytest.raises(SystemExit) as exit_info:
        main([str(runs), *args, "--out", str(runs.parent / "unused")])
    assert exit_info.value.code == 2
    assert len(caplog.records) == 1 and message in caplog.records[0].getMessage()
    assert "\n" not in caplog.records[0].getMessage()
    assert not (runs.parent / "unused").exists()


def test_a_missing_folder_is_one_line_and_exit_code_2(tmp_path, caplog):
    with caplog.at_level(logging.ERROR, logger="lmrec"), pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2 and "does not exist" in caplog.records[0].getMessage()


def test_a_model_compared_with_itself_differs_significantly_nowhere(runs, tmp_path, capsys):
    """The same run folder twice, under two labels: every per-user difference is 0."""
    for name in ("copy1", "copy2"):
        shutil.copytree(runs / "text1", tmp_path / name)
        overrides = yaml.safe_load((tmp_path / name / ".hydra" / "overrides.yaml").read_text())
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, f"+tag={name}"]))
    out = tmp_path / "report"
    assert main([str(tmp_path / "copy1"), str(tmp_path / "copy2"), "--out", str(out)]) == 0
    report = json.loads((out / "comparison.json").read_text())
    (pair,) = report["pairs"]
    for metric in report["metrics"]:
        figures = pair["per_seed"][0][metric]
        assert figures["significant"] is False and figures["mean_diff"] == 0
        assert (figures["wins"], figures["losses"]) == (0, 0)
    markdown = capsys.readouterr().out
    assert "†" not in markdown.split("## Cost")[0].replace("† significantly better", "")
    assert "+0.0 %" in markdown


def test_the_python_api_takes_the_same_options(runs):
    result = compare(runs, baseline="item_tower=id", metrics="ndcg@10", permutations=50, resamples=50)
    assert result.metrics == ["ndcg@10"] and [c["label"] for c in result.configurations] == [
        "model/item_tower=id", "model/item_tower=text"]  # fmt: skip
    with pytest.raises(ConfigError, match=r"^basline: not an option of the comparison"):
        compare(runs, basline="item_tower=id")
    with pytest.raises(ConfigError, match=r"compare.correction='sidak'; expected one of holm"):
        make_options({"correction": "sidak"}, where="compare.")
