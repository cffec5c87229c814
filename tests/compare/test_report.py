"""The report of a comparison: the markdown shows the right numbers and marks (direction-aware), LaTeX bolds the
best, JSON round-trips with nulls for NaN, the CSV has one row per configuration × metric × seed and per pair, and
the plots are drawn. Against a hand-made comparison (exact figures) and against fake run folders whose per-user
values are known, so the expected numbers are computed here with numpy rather than by lmrec.compare."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.compare import cells, latex, records
from lmrec.compare.analysis import Options, compare_runs
from lmrec.compare.report import to_markdown, write_report
from lmrec.compare.runs import find_runs
from tests.sweeps.fake_runs import write_run


def fake_run(folder: Path, overrides: list[str], seed: int, values: dict[str, np.ndarray], data_key: str = "d1",
             params: int = 1000, train_seconds: float = 2.0) -> Path:  # fmt: skip
    """A finished run folder with `values` as its per-user test table (users 0..n-1) and known costs."""
    info = {"monitor": "val/ndcg@10", "data_key": data_key, "params": {"total": params, "trainable": params // 2},
            "train_seconds": train_seconds, "test_seconds": 0.5, "seconds": 3.0, "peak_memory_mb": 100.0,
            "device": "cpu"}  # fmt: skip
    config = {"seed": seed, "task": {"_target_": "lmrec.tasks.ranking.RankingTask", "ties": "average"}}
    write_run(folder, [*overrides, f"seed={seed}"], {"test/ndcg@10": 0.0}, info, config)
    n = len(next(iter(values.values())))
    table = pd.DataFrame({"user_id": np.arange(n), **values})
    (folder / "per_user").mkdir()
    table.to_parquet(folder / "per_user" / "test.parquet", index=False)
    return folder


def _seed(mean: float, n: int = 100) -> dict:
    return {"n": n, "mean": mean, "std": 0.1, "t_low": mean - 0.01, "t_high": mean + 0.01,
            "bootstrap_low": mean - 0.02, "bootstrap_high": mean + 0.02}  # fmt: skip


def _test(mean_a: float, mean_b: float, p_corrected: float, significant: bool) -> dict:
    rel = (mean_b - mean_a) / mean_a
    return {"n": 100, "mean_a": mean_a, "mean_b": mean_b, "mean_diff": mean_b - mean_a, "diff_low": -1.0,
            "diff_high": 1.0, "t_statistic": 1.0, "t_pvalue": 0.5, "wilcoxon_statistic": 3.0, "wilcoxon_pvalue": 0.5,
            "permutation_pvalue": 0.5, "relative_change": rel, "relative_low": rel - 0.05, "relative_high": rel + 0.05,
            "cohens_dz": 0.3, "wins": 30, "ties": 60, "losses": 10, "p": p_corrected / 2, "p_corrected": p_corrected,
            "significant": significant}  # fmt: skip


def _seed_level() -> dict:
    nan = math.nan
    return {"t_statistic": nan, "t_pvalue": nan, "diff_mean": nan, "diff_low": nan, "diff_high": nan,
            "p_corrected": nan, "significant": False}  # fmt: skip


def hand_made(baseline: str | None = "base") -> dict:
    """Three configurations on one seed: `better` beats the baseline on both metrics (for mae by being lower),
    `worse` is significantly worse on ndcg@10 and not significantly different on mae (lower is better)."""
    means = {"base": (0.20, 0.80), "better": (0.22, 0.70), "worse": (0.18, 0.90)}
    configurations = [
        {"label": label, "seeds": [1],
         "per_seed": [{"seed": 1, "folder": f"/runs/{label}", "ndcg@10": _seed(ndcg), "mae": _seed(mae)}],
         "over_seeds": {m: {"n": 1, "mean": v, "std": math.nan, "t_low": math.nan, "t_high": math.nan}
                        for m, v in (("ndcg@10", ndcg), ("mae", mae))},
         "cost": {"params_total": 1000.0 * (i + 1), "params_trainable": 10.0, "encode_seconds": None,
                  "train_seconds": 1.5 * (i + 1), "test_seconds": 0.25, "run_seconds": 4.0, "peak_memory_mb": 512.0,
                  "device": "cpu"}}
        for i, (label, (ndcg, mae)) in enumerate(means.items())
    ]  # fmt: skip
    significance = {"better": {"ndcg@10": (0.012, True), "mae": (0.0004, True)},
                    "worse": {"ndcg@10": (0.03, True), "mae": (0.3, False)}}  # fmt: skip
    pairs = []
    for b in ("better", "worse"):
        tests = {m: _test(means["base"][j], means[b][j], *significance[b][m]) for j, m in enumerate(("ndcg@10", "mae"))}
        pairs.append({"a": "base", "b": b, "seeds": [1], "per_seed": [{"seed": 1, **tests}],
                      "over_seeds": {"ndcg@10": _seed_level(), "mae": _seed_level()}})  # fmt: skip
    options = {"baseline": baseline, "metrics": ["ndcg@10", "mae"], "split": "test", "test": "wilcoxon",
               "correction": "holm", "alpha": 0.05, "permutations": 1000, "resamples": 500, "confidence": 0.95,
               "seed": 0}  # fmt: skip
    return {"options": options, "metrics": ["ndcg@10", "mae"], "higher_is_better": {"ndcg@10": True, "mae": False},
            "configurations": configurations, "pairs": pairs}  # fmt: skip


def _row(markdown: str, section: str, label: str) -> list[str]:
    """The cells of `label`'s row in the table under the heading `section`."""
    block = markdown.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    line = next(line for line in block.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_markdown_shows_values_changes_corrected_p_and_direction_aware_marks():
    markdown = to_markdown(hand_made())
    assert "Wilcoxon signed-rank test" in markdown and "Holm correction over 4 tests" in markdown
    assert "α = 0.05" in markdown and "1000 permutations, 500 bootstrap resamples" in markdown
    assert "seeds 1" in markdown and "baseline `base`" in markdown
    assert _row(markdown, "ndcg@10 (higher is better)", "better") == [
        "better", "1", "**0.2200**", "[0.2000, 0.2400]", "+10.0 %", "[+5.0, +15.0] %", "0.012", "†", "30 / 60 / 10"
    ]  # fmt: skip
    assert _row(markdown, "ndcg@10 (higher is better)", "worse")[4:8] == ["-10.0 %", "[-15.0, -5.0] %", "0.030", "▽"]
    assert _row(markdown, "ndcg@10 (higher is better)", "base")[2:5] == ["0.2000", "[0.1800, 0.2200]", "baseline"]
    # mae: lower is better, so better's significant decrease is an improvement and the lowest value is bold
    assert _row(markdown, "mae (lower is better)", "better")[2:8] == [
        "**0.7000**", "[0.6800, 0.7200]", "-12.5 %", "[-17.5, -7.5] %", "4.0e-04", "†"
    ]  # fmt: skip
    assert _row(markdown, "mae (lower is better)", "worse")[6:8] == ["0.300", ""]
    assert _row(markdown, "Cost", "worse") == ["worse", "3,000", "10", "–", "4.5", "0.25", "512", "cpu"]
    assert "## Buckets" not in markdown and "seed-level" not in markdown  # one seed: no seed-level test


def test_marks_count_the_seeds_and_the_seed_level_test():
    cell = cells.Cell("b", 3, 0.2, 0.01, 0.1, 0.3, better=2, compared=3, seed_significant=True)
    assert cell.mark() == "†2/3*"
    assert cells.Cell("b", 1, 0.2, math.nan, 0.1, 0.3, worse=1, compared=1).mark() == "▽"
    assert cells.Cell("b", 1, 0.2, math.nan, 0.1, 0.3, compared=1).mark() == ""


def test_latex_has_booktabs_rules_bolds_the_best_per_direction_and_names_the_test():
    tex = latex.to_latex(hand_made())
    assert [line for line in tex.splitlines() if "rule" in line] == [r"\toprule", r"\midrule", r"\bottomrule"]
    rows = {line.split(" & ")[0]: line for line in tex.splitlines() if line.endswith(r"\\") and " & " in line}
    assert r"\textbf{0.2200}$^{\dagger}$" in rows["better"] and r"\textbf{0.7000}$^{\dagger}$" in rows["better"]
    assert r"\textbf" not in rows["worse"] and r"\textbf" not in rows["base"]  # 0.9000 is the worst mae
    assert r"0.1800$^{\triangledown}$" in rows["worse"]
    assert r"ndcg@10 $\uparrow$ & mae $\downarrow$" in rows["Configuration"]
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption"))
    assert "Wilcoxon signed-rank test" in caption and "Holm correction" in caption and r"\alpha = 0.05" in caption
    assert latex.escape("item_tower=id 50% #1 & {x}") == r"item\_tower=id 50\% \#1 \& \{x\}"


def test_json_round_trips_with_nan_as_null():
    comparison = hand_made()
    text = records.to_json(comparison)
    assert "NaN" not in text and '"p_corrected": null' in text
    loaded = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert loaded == records.without_nan(comparison)
    assert loaded["pairs"][0]["per_seed"][0]["ndcg@10"]["p_corrected"] == 0.012
    assert to_markdown(loaded) == to_markdown(comparison)  # the stored JSON renders the same report


def test_csv_has_a_row_per_configuration_metric_and_seed_and_per_pair():
    rows = list(csv.DictReader(io.StringIO(records.to_csv(hand_made()))))
    configurations, metrics, seeds, pairs = 3, 2, 1, 2
    assert len(rows) == configurations * metrics * (seeds + 1) + pairs * metrics * (seeds + 1)
    first = rows[0]
    assert (first["kind"], first["level"], first["configuration"], first["metric"], first["seed"]) == (
        "configuration", "users", "base", "ndcg@10", "1")  # fmt: skip
    pair = next(r for r in rows if r["kind"] == "pair" and r["configuration"] == "better" and r["metric"] == "mae")
    assert (pair["baseline"], float(pair["p_corrected"]), pair["significant"]) == ("base", 0.0004, "True")
    seed_level = next(r for r in rows if r["kind"] == "pair" and r["level"] == "seeds")
    assert seed_level["seed"] == "" and seed_level["t_pvalue"] == ""  # NaN is an empty cell


def test_without_a_baseline_every_other_pair_gets_its_own_table():
    comparison = hand_made(baseline=None)
    extra = _test(0.22, 0.18, 0.001, True)
    comparison["pairs"].append({"a": "better", "b": "worse", "seeds": [1],
                                "per_seed": [{"seed": 1, "ndcg@10": extra, "mae": _test(0.7, 0.9, 0.5, False)}],
                                "over_seeds": {"ndcg@10": _seed_level(), "mae": _seed_level()}})  # fmt: skip
    markdown = to_markdown(comparison)
    assert "reference (every pair compared) `base`" in markdown and "Δ vs reference" in markdown
    assert "| better | worse | -18.2 % | [-23.2, -13.2] % | 0.001 | ▽ | – | 30 / 60 / 10 |" in markdown


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Two configurations × two seeds on 40 users: B = A + 0.1 on the first 30 users (and on their bucket
    column), equal on the others; B costs more."""
    root = tmp_path_factory.mktemp("fake-sweep")
    rng = np.random.default_rng(0)
    for seed in (1, 2):
        a = rng.uniform(0, 0.5, 40)
        b = a + np.r_[np.full(30, 0.1), np.zeros(10)]
        for name, values, params in (("a", a, 1000), ("b", b, 5000)):
            bucket = np.where(np.arange(40) < 20, values, np.nan)
            columns = {"ndcg@10": values, "recall@10": values / 2, "users_q1/ndcg@10": bucket}
            fake_run(root / f"{name}{seed}", [f"model={name}"], seed, columns, params=params)
    return root


def test_the_report_of_fake_runs_shows_the_numbers_computed_from_their_values(sweep):
    comparison = compare_runs(find_runs([sweep]), Options(baseline="model=a", permutations=200, resamples=200))
    markdown = to_markdown(comparison)
    for label in ("a", "b"):
        seed_means = [pd.read_parquet(sweep / f"{label}{s}" / "per_user" / "test.parquet")["ndcg@10"].mean()
                      for s in (1, 2)]  # fmt: skip
        row = _row(markdown, "ndcg@10 (higher is better)", f"model={label}")
        assert row[2].strip("*") == f"{np.mean(seed_means):.4f} ± {np.std(seed_means, ddof=1):.4f}"
    row = _row(markdown, "ndcg@10 (higher is better)", "model=b")
    # B - A is the same on both seeds (0.075): one measurement repeated, so no seed-level test (no star).
    assert row[2].startswith("**") and row[7] == "†2/2" and row[9] == "60 / 20 / 0"
    assert _row(markdown, "Cost", "model=b")[1:3] == ["5,000", "2,500"]
    assert "### ndcg@10 by bucket" in markdown and "users_q1" in markdown


def test_write_report_writes_every_format_and_the_plots(sweep, tmp_path):
    comparison = compare_runs(find_runs([sweep]), Options(baseline="model=a", permutations=100, resamples=100))
    written = write_report(comparison, tmp_path / "report")
    assert set(written) == {"markdown", "latex", "json", "csv", "metrics_plot", "buckets_plot", "cost_plot"}
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(p.name for p in written.values())
    for key in ("metrics_plot", "buckets_plot", "cost_plot"):
        assert written[key].read_bytes().startswith(b"\x89PNG")
    assert json.loads(written["json"].read_text())["options"]["baseline"] == "model=a"
    rows = list(csv.DictReader(written["csv"].open()))
    assert len(rows) == 2 * 3 * (2 + 1) + 1 * 3 * (2 + 1)  # configurations x columns x (seeds + over seeds), pair
    assert written["markdown"].read_text() == to_markdown(comparison)


def test_only_the_bucket_columns_every_run_wrote_are_compared(tmp_path):
    # A reranker's per-user table adds its candidate-set and retriever columns; its retriever's run has neither.
    values = np.linspace(0.0, 1.0, 20)
    fake_run(tmp_path / "retriever", ["model=ease"], 0, {"ndcg@10": values, "users_q1/ndcg@10": values})
    reranked = {"ndcg@10": values[::-1], "users_q1/ndcg@10": values[::-1], "candidates20/ndcg@10": values,
                "retriever/ndcg@10": values}  # fmt: skip
    fake_run(tmp_path / "rerank", ["experiment=rerank"], 0, reranked)
    for order in (["rerank", "retriever"], ["retriever", "rerank"]):
        runs = find_runs([tmp_path / name for name in order])
        comparison = compare_runs(runs, Options(baseline="model=ease", permutations=50, resamples=50))
        assert comparison.metrics == ["ndcg@10", "users_q1/ndcg@10"]
