"""Multiruns, DDP and reproducibility end to end, through the installed `lmrec-train`/`lmrec-eval` scripts, on a
slice of the bundled data. One DDP multirun is shared by the tests that inspect it (two CPU processes per job)."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import REPO_ROOT
from tests.helpers import run_cli
from tests.wandb_records import read_run

SLICE = ["data.max_users=31", "trainer.max_epochs=1"]  # odd: DDP ranks get unequal shares of users


def _summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "summary.csv") as handle:
        return list(csv.DictReader(handle))


def _wandb_run(job_dir: Path) -> dict:
    (run_file,) = (job_dir / "wandb").glob("offline-run-*/run-*.wandb")  # exactly one W&B run per job
    return read_run(run_file)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sweep-cache")


@pytest.fixture(scope="module")
def ddp_sweep(tmp_path_factory, cache):
    """`-m model/head=dot,mlp` on the ranking task, each job DDP over 2 CPU processes, logged to W&B (offline)."""
    base = tmp_path_factory.mktemp("ddp-sweep")
    sweep_dir, log_dir = base / "sweep", base / "logs"
    result = run_cli(
        "lmrec-train",
        [
            "-m",
            "model/head=dot,mlp",
            "task=ranking",
            "trainer=ddp_sim",
            *SLICE,
            f"hydra.sweep.dir={sweep_dir}",
            f"paths.log_dir={log_dir}",
            f"paths.cache_dir={cache}",
        ],
        home=base,
    )
    return {"dir": sweep_dir, "base": base, "log_dir": log_dir, "out": result.stdout + result.stderr}


def test_ddp_multirun_has_one_folder_metrics_file_and_wandb_run_per_job(ddp_sweep):
    sweep_dir = ddp_sweep["dir"]
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    # Rank 1 of each job ran inside the job's folder (its own log file there) and made no folder of its own.
    assert not ddp_sweep["log_dir"].exists()
    for job, head in (("0", "dot"), ("1", "mlp")):
        job_dir = sweep_dir / job
        assert "test metrics" in (job_dir / "train_rank1.log").read_text()
        assert yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())[0] == f"model/head={head}"
        metrics = json.loads((job_dir / "metrics.json").read_text())
        logged = _wandb_run(job_dir)
        assert logged["group"] == "sweep" and logged["job_type"] == f"head={head}" and logged["exit_code"] == 0
        assert logged["config"]["model"]["head"]["name"] == head
        assert logged["summary"]["test/ndcg@10"] == pytest.approx(metrics["test/ndcg@10"], abs=1e-7)
    # Only rank zero prints: one "test metrics" line per job on the console, no rank-1 lines from Lightning either.
    assert len(re.findall(r"\[lmrec.cli.train\]\[INFO\] - test metrics", ddp_sweep["out"])) == 2
    assert "[rank: 1]" not in ddp_sweep["out"]


def test_sweep_summary_has_one_row_per_job_with_its_metrics(ddp_sweep):
    sweep_dir = ddp_sweep["dir"]
    rows = _summary_rows(sweep_dir)
    assert [r["job"] for r in rows] == ["0", "1"]
    for row, head in zip(rows, ("dot", "mlp"), strict=True):
        assert row["status"] == "COMPLETED" and row["error"] == ""
        assert row["overrides"].split()[0] == f"model/head={head}" and row["output_dir"] == row["job"]
        metrics = json.loads((sweep_dir / row["job"] / "metrics.json").read_text())
        assert {k: float(row[k]) for k in metrics} == metrics
    markdown = (sweep_dir / "summary.md").read_text()
    assert "2 jobs: 2 completed, 0 failed." in markdown
    assert re.search(r"^\| 1 \| model/head=mlp \| COMPLETED \|", markdown, flags=re.M)


def test_ddp_test_metrics_equal_single_process_evaluation(ddp_sweep, cache):
    """Sharded full-ranking evaluation (2 processes) gives exactly the 1-process numbers for the same checkpoint."""
    jobs = [ddp_sweep["dir"] / "0", ddp_sweep["dir"] / "1"]
    evals = ddp_sweep["base"] / "evals"
    run_cli(
        "lmrec-eval",
        ["-m", f"run={jobs[0]},{jobs[1]}", "accelerator=cpu", f"hydra.sweep.dir={evals}", f"paths.cache_dir={cache}"],
        home=ddp_sweep["base"],
    )
    for index, job in enumerate(jobs):
        sharded = json.loads((job / "metrics.json").read_text())
        single = json.loads((evals / str(index) / "eval_metrics.json").read_text())
        test_keys = [k for k in sharded if k.startswith("test/")]
        assert len(test_keys) == 16  # NDCG/Recall/HR/MRR/Precision @5/10/20 and AUC
        for key in test_keys:
            assert single[key] == pytest.approx(sharded[key], abs=1e-6), key
        # Each user's values too: the DDP run's per-user file (both ranks' rows, gathered) is the single process's.
        folders = (job, evals / str(index))
        rows = [pd.read_parquet(d / "per_user" / "test.parquet").sort_values("user_id") for d in folders]
        assert rows[0]["user_id"].tolist() == rows[1]["user_id"].tolist()
        assert len(rows[0]) == rows[0]["user_id"].nunique() > 0  # every user once: no rank padded the users
        numbers = [r.drop(columns="user_id").to_numpy() for r in rows]
        assert numbers[0].shape == numbers[1].shape and np.allclose(*numbers, atol=1e-6, equal_nan=True)
    assert [r["status"] for r in _summary_rows(evals)] == ["COMPLETED", "COMPLETED"]  # eval sweeps summarised too


def test_failing_job_is_recorded_and_the_other_jobs_still_run(tmp_path, cache):
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        "lmrec-train",
        [
            "-m",
            "model.item_tower.project=false,true",  # refused when the model is built, after the W&B run started
            "data.max_users=31",
            "trainer.max_epochs=1",
            f"hydra.sweep.dir={sweep_dir}",
            f"paths.cache_dir={cache}",
        ],
        home=tmp_path,
        ok=False,
    )
    assert result.returncode == 1  # the sweep ran to its end, then reports that a job failed
    failed, completed = _summary_rows(sweep_dir)
    assert failed["status"] == "FAILED" and failed["overrides"].lower().startswith("model.item_tower.project=false ")
    assert failed["error"] == (
        "ConfigError: model.item_tower.project=false needs model.dim (64) equal to the encoder width (384)"
    )
    assert failed["test/rmse"] == "" and not (sweep_dir / "0" / "metrics.json").exists()
    metrics = json.loads((sweep_dir / "1" / "metrics.json").read_text())
    assert completed["status"] == "COMPLETED" and float(completed["test/rmse"]) == metrics["test/rmse"]
    assert "2 jobs: 1 completed, 1 failed." in (sweep_dir / "summary.md").read_text()
    failed_run, completed_run = _wandb_run(sweep_dir / "0"), _wandb_run(sweep_dir / "1")
    assert failed_run["exit_code"] == 1 and failed_run["summary"]["error"] == failed["error"]
    assert completed_run["exit_code"] == 0
    assert completed_run["summary"]["test/rmse"] == pytest.approx(metrics["test/rmse"])
    assert failed_run["job_type"] == "project=False" and completed_run["job_type"] == "project=True"


def test_optuna_search_runs_its_trials_and_reports_the_best(tmp_path, cache):
    sweep_dir = tmp_path / "optuna"
    run_cli(
        "lmrec-train",
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            "logger=csv",
            *SLICE,
            f"hydra.sweep.dir={sweep_dir}",
            f"paths.cache_dir={cache}",
        ],
        home=tmp_path,
    )
    trials = []
    for job in ("0", "1"):
        overrides = yaml.safe_load((sweep_dir / job / ".hydra" / "overrides.yaml").read_text())
        params = dict(o.split("=", 1) for o in overrides if o.startswith("model."))
        assert set(params) == {"model.optimizer.lr", "model.optimizer.weight_decay", "model.dim"}
        trials.append((json.loads((sweep_dir / job / "metrics.json").read_text())["best/val/rmse"], params))
    assert trials[0][1] != trials[1][1]
    best_value, best_params = min(trials, key=lambda t: t[0])
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(best_value)  # minimised: the task monitors val/rmse
    assert {k: str(v) for k, v in results["best_params"].items()} == best_params
    assert [r["status"] for r in _summary_rows(sweep_dir)] == ["COMPLETED", "COMPLETED"]


def test_same_config_and_seed_give_identical_metrics_and_record_provenance(tmp_path, cache):
    common = ["deterministic=true", "logger=csv", *SLICE, f"paths.cache_dir={cache}"]
    run_cli("lmrec-train", ["-m", "seed=42,7", *common, f"hydra.sweep.dir={tmp_path / 'sweep'}"], home=tmp_path)
    run_cli("lmrec-train", ["seed=42", *common, f"hydra.run.dir={tmp_path / 'again'}"], home=tmp_path)
    first = json.loads((tmp_path / "sweep" / "0" / "metrics.json").read_text())
    other_seed = json.loads((tmp_path / "sweep" / "1" / "metrics.json").read_text())
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again == first  # bit-identical, in another process
    assert other_seed["test/rmse"] != first["test/rmse"]
    origin = json.loads((tmp_path / "again" / "run.json").read_text())["provenance"]
    git = ["git", "-C", str(REPO_ROOT)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout
        assert origin["git_commit"] == head.stdout.strip() and origin["git_dirty"] == bool(status.strip())
    else:
        assert origin["git_commit"] is None
    import pytorch_lightning
    import transformers

    assert origin["versions"]["torch"] == torch.__version__
    assert origin["versions"]["transformers"] == transformers.__version__
    assert origin["versions"]["pytorch_lightning"] == pytorch_lightning.__version__
    assert "peft" in origin["versions"]  # null until a tuning mode needs it
