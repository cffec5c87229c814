"""End to end through the installed console scripts, started outside the checkout, on a slice of the bundled
data with the packaged MiniLM."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_DATA, REPO_ROOT
from tests.helpers import run_cli
from tests.wandb_records import read_run

SLICE = ["data.max_users=30", "trainer.max_epochs=2"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One default-config training run (W&B logger, offline: no API key and an empty HOME)."""
    base = tmp_path_factory.mktemp("e2e")
    run_dir, cache = base / "run", base / "cache"
    result = run_cli(
        "lmrec-train",
        [*SLICE, "export_split=true", f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache}"],
        home=base,
    )
    return {"dir": run_dir, "cache": cache, "out": result.stdout + result.stderr, "base": base}


def test_run_directory_holds_config_checkpoints_and_metrics(trained):
    run_dir = trained["dir"]
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "max_users: 30" in (run_dir / "config_resolved.yaml").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"test/rmse", "test/mae", "test/auc", "best/val/rmse"} <= set(metrics)
    assert 0.3 < metrics["test/rmse"] < 2.5 and 0.0 <= metrics["test/auc"] <= 1.0
    info = json.loads((run_dir / "run.json").read_text())
    assert (run_dir / info["checkpoint"]).is_file()
    assert info["params"]["encoder_frozen"] == 22_713_728  # all-MiniLM-L6-v2


def test_exported_split_uses_original_ids_and_covers_the_slice(trained):
    split_dir = trained["dir"] / "split"
    rows = {}
    for name in ("train", "val", "test"):
        with open(split_dir / f"{name}.csv") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == ["user", "item", "rating", "timestamp"]
            rows[name] = [(r["user"], r["item"], float(r["rating"]), r["timestamp"]) for r in reader]
    with open(BUNDLED_DATA / "ratings.csv") as handle:
        users = sorted({int(r["userId"]) for r in csv.DictReader(handle)})[:30]
    with open(BUNDLED_DATA / "ratings.csv") as handle:
        expected = {
            (r["userId"], r["movieId"], float(r["rating"]), r["timestamp"])
            for r in csv.DictReader(handle)
            if int(r["userId"]) in users
        }
    exported = rows["train"] + rows["val"] + rows["test"]
    assert len(exported) == len(expected) and set(exported) == expected
    assert len(rows["train"]) == pytest.approx(0.8 * len(expected), abs=1)


def test_wandb_offline_run_records_metrics_config_params_and_stats(trained):
    assert "wandb sync" in trained["out"]
    (run_file,) = (trained["dir"] / "wandb").glob("offline-run-*/run-*.wandb")
    logged = read_run(run_file)
    config = logged["config"]
    assert config["model"]["item_tower"]["name"] == "text" and config["seed"] == 42
    assert config["params"]["trainable"] > 0 and config["params"]["encoder_frozen"] == 22_713_728
    assert config["data_stats"]["users"] == 30 and config["data_stats"]["interactions"] > 0
    assert {"val/rmse", "val/mae", "val/auc", "test/rmse", "train/loss"} <= logged["history_keys"]
    metrics = json.loads((trained["dir"] / "metrics.json").read_text())
    assert logged["summary"]["best/val/rmse"] == pytest.approx(metrics["best/val/rmse"])
    assert logged["summary"]["test/rmse"] == pytest.approx(metrics["test/rmse"])
    assert logged["summary"]["params/trainable"] == config["params"]["trainable"]


def test_eval_from_checkpoint_reproduces_training_test_metrics(trained):
    out = trained["base"] / "eval"
    run_cli(
        "lmrec-eval",
        [f"run={trained['dir']}", f"hydra.run.dir={out}", f"paths.cache_dir={trained['cache']}"],
        home=trained["base"],
    )
    evaluated = json.loads((out / "eval_metrics.json").read_text())
    metrics = json.loads((trained["dir"] / "metrics.json").read_text())
    for key in ("test/rmse", "test/mae", "test/auc"):
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-7), key


def test_second_run_hits_both_caches(trained):
    result = run_cli(
        "lmrec-train",
        [
            *SLICE,
            "logger=csv",
            "train=false",
            f"hydra.run.dir={trained['base'] / 'again'}",
            f"paths.cache_dir={trained['cache']}",
        ],
        home=trained["base"],
    )
    log = result.stdout + result.stderr
    assert "processed data cache hit" in log and "item embedding cache hit" in log


def test_bad_input_fails_before_any_encoding(tmp_path):
    data = tmp_path / "ml-latest-small"
    data.mkdir()
    for name in ("movies.csv", "tags.csv"):
        (data / name).write_bytes((BUNDLED_DATA / name).read_bytes())
    lines = (BUNDLED_DATA / "ratings.csv").read_text().splitlines()
    lines[4] = "1,47,five,964983815"
    (data / "ratings.csv").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "lmrec-train"),
            f"paths.data_dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'run'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            "logger=csv",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 2
    assert "DataValidationError: " in result.stdout and "ratings.csv:5: column 'rating'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "cache" / "item_embeddings").exists()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_lora_run_on_minilm_is_small_on_disk_reevaluates_and_exports(tmp_path):
    """LoRA on the packaged MiniLM end to end: train, re-test the checkpoint, export, load it with peft."""
    from peft import PeftModel
    from transformers import AutoModel

    from lmrec.encoders.resolve import packaged_minilm_path

    run_dir, cache = tmp_path / "lora", tmp_path / "cache"
    run_cli(
        "lmrec-train",
        [
            "data.max_users=8",
            "data.batch_size=256",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "model/tuning=lora",
            "model.encoder.max_length=32",
            "logger=csv",
            f"hydra.run.dir={run_dir}",
            f"paths.cache_dir={cache}",
        ],
        home=tmp_path,
    )
    info = json.loads((run_dir / "run.json").read_text())
    assert 0 < info["params"]["trainable_pct"] < 5 and info["params"]["total"] > 22_000_000
    assert info["seconds_per_epoch"] > 0 and info["peak_memory_mb"] > 0
    assert info["optimizer_steps"] == 2  # limit_train_batches=2, one epoch
    assert info["seconds_per_step"] == pytest.approx(info["train_seconds"] / 2)
    checkpoint = run_dir / info["checkpoint"]
    assert checkpoint.stat().st_size < 3_000_000  # MiniLM's own weights are 90 MB; only LoRA + towers are saved

    run_cli(
        "lmrec-eval", [f"run={run_dir}", f"hydra.run.dir={tmp_path / 'eval'}", f"paths.cache_dir={cache}"], tmp_path
    )
    evaluated = json.loads((tmp_path / "eval" / "eval_metrics.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert evaluated["test/rmse"] == pytest.approx(metrics["test/rmse"], abs=1e-6)

    run_cli(
        "lmrec-export",
        [f"run={run_dir}", f"output_dir={tmp_path / 'export'}", f"hydra.run.dir={tmp_path / 'x'}"],
        tmp_path,
    )
    config = json.loads((tmp_path / "export" / "adapter_config.json").read_text())
    assert (
        config["peft_type"] == "LORA" and config["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    )
    loaded = PeftModel.from_pretrained(AutoModel.from_pretrained(packaged_minilm_path()), tmp_path / "export")
    assert any("lora_A" in name for name, _ in loaded.named_parameters())


def test_ease_with_text_side_information_reads_the_cached_vectors_and_re_tests_without_encoding(trained):
    """model=ease_text reads the frozen MiniLM vectors the text-tower run cached; lmrec-eval, given an empty cache,
    takes them from the checkpoint instead of encoding again, and reproduces the test metrics."""
    run_dir = trained["base"] / "ease_text"
    result = run_cli(
        "lmrec-train",
        [
            "data.max_users=30",
            "task=ranking",
            "model=ease_text",
            "logger=csv",
            f"hydra.run.dir={run_dir}",
            f"paths.cache_dir={trained['cache']}",
        ],
        home=trained["base"],
    )
    assert "item embedding cache hit" in result.stdout + result.stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["encoding"]["cache_hit"] is True and info["encoding"]["width"] == 384
    metrics = json.loads((run_dir / "metrics.json").read_text())
    out = trained["base"] / "ease_text_eval"
    evaluated = run_cli(
        "lmrec-eval",
        [f"run={run_dir}", f"hydra.run.dir={out}", f"paths.cache_dir={trained['base'] / 'empty_cache'}"],
        home=trained["base"],
    )
    assert "item embedding cache" not in evaluated.stdout + evaluated.stderr
    scores = json.loads((out / "eval_metrics.json").read_text())
    for key in ("test/ndcg@10", "test/recall@20", "test/auc"):
        assert scores[key] == pytest.approx(metrics[key], abs=1e-7), key
