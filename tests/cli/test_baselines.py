"""Fitted baselines through `lmrec-train` and `lmrec-eval`: the same run files and evaluator as neural models."""

from __future__ import annotations

import csv
import json

import pytest

from tests.cli.test_eval import _one_line_error
from tests.helpers import run_cli

SLICE = ["data.max_users=60", "logger=csv"]


def test_ease_run_writes_the_run_files_and_lmrec_eval_re_tests_its_checkpoint(tmp_path):
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    run_cli(
        "lmrec-train",
        ["task=ranking", "model=ease", *SLICE, f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache}"],
        tmp_path,
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    info = json.loads((run_dir / "run.json").read_text())
    assert {"test/ndcg@10", "test/auc", "best/val/ndcg@10"} <= set(metrics)
    assert 0.0 < metrics["test/ndcg@10"] <= 1.0 and info["best_value"] == metrics["best/val/ndcg@10"]
    assert (run_dir / info["checkpoint"]).is_file() and not (run_dir / "checkpoints" / "last.ckpt").exists()
    assert info["params"]["trainable"] == 0 and info["epochs"] == 1
    out = tmp_path / "eval"
    run_cli("lmrec-eval", [f"run={run_dir}", f"hydra.run.dir={out}", f"paths.cache_dir={cache}"], tmp_path)
    evaluated = json.loads((out / "eval_metrics.json").read_text())
    for key in ("test/ndcg@10", "test/recall@20", "test/auc"):
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-7), key


def test_rating_biases_run_and_a_ranking_baseline_under_the_rating_task_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    common = [*SLICE, f"paths.cache_dir={tmp_path / 'cache'}"]
    run_cli("lmrec-train", ["task=rating", "model=biases", f"hydra.run.dir={run_dir}", *common], tmp_path)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.5 < metrics["test/rmse"] < 1.5 and "best/val/rmse" in metrics
    refused = run_cli(
        "lmrec-train", ["task=rating", "model=ease", f"hydra.run.dir={tmp_path / 'x'}", *common], tmp_path, ok=False
    )
    _one_line_error(refused, "model=ease ranks items and predicts no ratings; use task=ranking")


def test_baselines_experiment_writes_one_row_per_baseline(tmp_path):
    pytest.importorskip("implicit")
    sweep = tmp_path / "sweep"
    run_cli(
        "lmrec-train",
        ["experiment=baselines", *SLICE, f"hydra.sweep.dir={sweep}", f"paths.cache_dir={tmp_path / 'cache'}"],
        tmp_path,
    )
    rows = list(csv.DictReader((sweep / "baselines.csv").open()))
    assert [(r["label"], r["status"]) for r in rows] == [(m, "completed") for m in ("pop", "itemknn", "ease", "als")]
    for row in rows:
        metrics = json.loads((sweep / row["job"] / "metrics.json").read_text())
        assert row["metric"] == "test/ndcg@10" and float(row["value"]) == pytest.approx(metrics["test/ndcg@10"])
