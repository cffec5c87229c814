"""`lmrec-train resume=<dir>` for text towers (frozen and tuned MiniLM), W&B runs and jobs of a multirun: the
resumed run ends with the metrics of an uninterrupted one, in the same folder and the same W&B run."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_crash import killed, metrics, ok, one_line_error, run_train

TEXT = [
    "data.max_users=4",  # 460 items: validation and test encode the catalogue with the tuned encoder
    "data.batch_size=64",  # fewer distinct items per tuned step: LoRA MiniLM steps dominate this file
    "model.encoder.max_length=32",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=2",
    "deterministic=true",
]


@pytest.mark.parametrize(("tuning", "logger"), [("frozen", "wandb"), ("lora", "csv")])
def test_text_tower_run_resumes_to_the_same_metrics(tmp_path, tuning, logger):
    args = [*TEXT, f"model/tuning={tuning}", f"logger={logger}", f"paths.cache_dir={tmp_path / 'cache'}"]
    ok(run_train([*args, f"hydra.run.dir={tmp_path / 'reference'}"], tmp_path))
    run_dir = tmp_path / "run"
    killed(run_train([*args, f"hydra.run.dir={run_dir}"], tmp_path, kill_at="step3"))  # epoch 2, its 2nd step
    ok(run_train([f"resume={run_dir}"], tmp_path))
    assert metrics(run_dir) == metrics(tmp_path / "reference")
    if logger == "wandb":  # both attempts logged into the W&B run whose id the folder recorded
        run_id = json.loads((run_dir / "run_state.json").read_text())["wandb"]["id"]
        attempts = sorted((run_dir / "wandb").glob("offline-run-*"))
        assert len(attempts) == 2 and all(p.name.endswith(f"-{run_id}") for p in attempts)


def test_a_multirun_job_resumes_in_its_own_folder(tmp_path):
    tiny = ["data.max_users=30", "model/item_tower=id", "trainer.max_epochs=3", "deterministic=true", "logger=csv"]
    cache = f"paths.cache_dir={tmp_path / 'cache'}"
    ok(run_train([*tiny, cache, "model.dim=16", f"hydra.run.dir={tmp_path / 'reference'}"], tmp_path))
    sweep = tmp_path / "sweep"
    killed(run_train(["-m", *tiny, cache, "model.dim=16,32", f"hydra.sweep.dir={sweep}"], tmp_path, kill_at="step9"))
    job = sweep / "0"
    assert (job / "checkpoints" / "last.ckpt").is_file() and not (sweep / "1").exists()
    one_line_error(run_train([f"resume={job}", "model.dim=32"], tmp_path), "model.dim=32 would change it")
    ok(run_train([f"resume={job}"], tmp_path))
    assert metrics(job) == metrics(tmp_path / "reference")


def test_a_finished_run_folder_is_never_reused(tmp_path):
    tiny = ["data.max_users=20", "model/item_tower=id", "trainer.max_epochs=1", "logger=csv"]
    run_dir, cache = tmp_path / "run", f"paths.cache_dir={tmp_path / 'cache'}"
    ok(run_train([*tiny, cache, f"hydra.run.dir={run_dir}"], tmp_path))
    first = metrics(run_dir)
    config = (run_dir / ".hydra" / "config.yaml").read_text()
    one_line_error(run_train([*tiny, cache, "model.dim=32", f"hydra.run.dir={run_dir}"], tmp_path), "already holds")
    assert (run_dir / ".hydra" / "config.yaml").read_text() == config and metrics(run_dir) == first
    ok(run_train([*tiny, cache, "model.dim=32", "overwrite=true", f"hydra.run.dir={run_dir}"], tmp_path))
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch000.ckpt", "last.ckpt"]
    assert "dim: 32" in (run_dir / ".hydra" / "config.yaml").read_text() and metrics(run_dir) != first
