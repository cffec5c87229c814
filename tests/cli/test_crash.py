"""`lmrec-train` killed with SIGKILL at five points, then resumed or re-run: the final metrics equal those of an
uninterrupted run with the same seed, and no file the killed attempt left is read.

The kill is sent by the training process to itself, from a patched function at the exact point (a harness that
wraps `lmrec.cli.train.main`), instead of by the test after a log line: a tiny run passes any log line in
milliseconds, so a kill from outside would land somewhere else on each run. SIGKILL runs no cleanup code, so what
the folder holds afterwards is what a real kill leaves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: Runs `lmrec-train` with its arguments; LMREC_TEST_KILL_AT names where the process kills itself.
HARNESS = r"""
import io, os, signal, sys

point = os.environ.get("LMREC_TEST_KILL_AT", "")


def die():
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if point == "prepare":  # the processed tables are written, the cache entry not yet sealed
    import lmrec.data.processed as processed
    processed.seal_dir = lambda folder: die()
elif point == "encoding":  # the frozen encoder has encoded (and saved as parts) two batches of item texts
    from lmrec.encoders import embedding_cache
    original_add, calls = embedding_cache.PartialEncoding.add, []
    def add(self, key, rows, vectors):
        original_add(self, key, rows, vectors)
        self.flush(key)  # a part per batch: what a long encoding has saved by the time it is killed
        calls.append(1)
        if len(calls) == 2:
            die()
    embedding_cache.PartialEncoding.add = add
elif point.startswith("step"):  # mid-epoch, before optimizer step N
    from lmrec.model.module import RecommenderModule
    original_step = RecommenderModule.training_step
    def step(self, batch, index):
        if self.trainer.global_step == int(point[4:]):
            die()
        return original_step(self, batch, index)
    RecommenderModule.training_step = step
elif point.startswith("save"):  # checkpoint write number N: half its bytes reach the disk
    import lmrec.runs.checkpoints as checkpoints
    real_save, saves = checkpoints.torch.save, []
    def save(payload, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == int(point[4:]):
            buffer = io.BytesIO()
            real_save(payload, buffer)
            with open(path, "wb") as handle:
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            die()
        return real_save(payload, path, *args, **kwargs)
    checkpoints.torch.save = save
elif point == "test":  # the best checkpoint is being tested
    from lmrec.model.module import RecommenderModule
    RecommenderModule.test_step = lambda self, *args, **kwargs: die()

from lmrec.cli.train import main

sys.argv = ["lmrec-train", *sys.argv[1:]]
main()
"""

#: Tiny and deterministic: 30 users, ID towers, a ranking task with sampled negatives and MLP dropout (so the
#: shuffling, the negatives and dropout all draw from the generators a resume must restore).
TINY = [
    "data.max_users=30",
    "model/item_tower=id",
    "model/head=mlp",
    "task=ranking",
    "task.loss=bpr",  # sampled negatives: the MLP scores pairs (in-batch softmax would score every pair of the batch)
    "trainer.max_epochs=3",
    "deterministic=true",
    "logger=csv",
]


def run_train(
    args: list[str], home: Path, kill_at: str | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`lmrec-train args` as a user runs it (W&B offline, empty HOME), optionally killed at `kill_at`."""
    harness = home / "lmrec_train_harness.py"
    if not harness.is_file():
        harness.write_text(HARNESS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "LMREC_TEST_", "SLURM_"))}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", WANDB_SILENT="true", **(env_extra or {}))
    if kill_at:
        env["LMREC_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, str(harness), *args], capture_output=True, text=True, env=env, cwd=home, timeout=600
    )


def ok(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def killed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == -9, (result.stdout + result.stderr)[-3000:]


def metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())


def one_line_error(result: subprocess.CompletedProcess, expected: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "Error: " in line]
    assert len(errors) == 1 and expected in errors[0], errors
    return errors[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every crashed one must reproduce."""
    base = tmp_path_factory.mktemp("crash")
    run_dir = base / "reference"
    ok(run_train([*TINY, f"hydra.run.dir={run_dir}", f"paths.cache_dir={base / 'cache'}"], base))
    return {"base": base, "cache": base / "cache", "metrics": metrics(run_dir)}


def test_killed_mid_epoch_resumes_to_the_same_metrics(reference):
    base, run_dir = reference["base"], reference["base"] / "mid_epoch"
    args = [*TINY, f"hydra.run.dir={run_dir}", f"paths.cache_dir={reference['cache']}"]
    killed(run_train(args, base, kill_at="step9"))  # epoch 3 of 3 (4 steps per epoch), its 2nd step
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "run.json").exists()
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    out = ok(run_train([f"resume={run_dir}"], base))
    assert "Restoring states from the checkpoint path" in out and "resuming" in out
    assert metrics(run_dir) == reference["metrics"]  # bit-identical, not approximately
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() != before  # the resumed run wrote its own
    info = json.loads((run_dir / "run.json").read_text())
    assert info["resumed_from"] == "checkpoints/last.ckpt" and info["epochs"] == 3
    assert json.loads((run_dir / "run_state.json").read_text())["resumes"] == 1


def test_a_requeued_slurm_job_resumes_its_own_run_and_still_refuses_another(reference):
    """SLURM reruns a pre-empted job's command unchanged, with SLURM_RESTART_COUNT set: the same command in a
    folder holding its own killed run resumes it (bit-identical); killed before any checkpoint, it starts again;
    a folder holding another config's run is refused as for any start."""
    base, cache = reference["base"], reference["cache"]
    requeued = {"SLURM_RESTART_COUNT": "1"}
    run_dir = base / "requeued"
    args = [*TINY, f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache}"]
    killed(run_train(args, base, kill_at="step9"))
    out = ok(run_train(args, base, env_extra=requeued))
    assert "SLURM requeue 1: resuming" in out and "Restoring states from the checkpoint path" in out
    assert metrics(run_dir) == reference["metrics"]
    assert json.loads((run_dir / "run_state.json").read_text())["resumes"] == 1

    early = base / "requeued_early"
    early_args = [*TINY, f"hydra.run.dir={early}", f"paths.cache_dir={cache}"]
    killed(run_train(early_args, base, kill_at="save1"))  # the first checkpoint never lands
    assert not (early / "checkpoints" / "last.ckpt").exists()
    out = ok(run_train(early_args, base, env_extra=requeued))
    assert "no checkpoint yet; starting this job's run again" in out
    assert metrics(early) == reference["metrics"]

    other = [*args[:-2], "seed=7", *args[-2:]]  # another config in the same folder
    one_line_error(run_train(other, base, env_extra=requeued), "already holds a run")


def test_killed_during_data_preparation_is_rerun_to_the_same_metrics(reference):
    base, run_dir, cache = reference["base"], reference["base"] / "prepare", reference["base"] / "cache_prepare"
    args = [*TINY, f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache}"]
    killed(run_train(args, base, kill_at="prepare"))
    assert not list((cache / "processed").glob("[!.]*"))  # only the unsealed temporary folder
    line = one_line_error(run_train([f"resume={run_dir}"], base), "nothing to continue; run it again")
    assert "overwrite=true" in line
    one_line_error(run_train(args, base), "already holds a run")  # a plain re-run would mix the two
    out = ok(run_train([*args, "overwrite=true"], base))
    assert "processed data cache hit" not in out  # the half-written entry is not read
    assert metrics(run_dir) == reference["metrics"]


def test_killed_during_checkpoint_save_resumes_from_the_whole_previous_checkpoint(reference):
    base, run_dir = reference["base"], reference["base"] / "save"
    args = [*TINY, f"hydra.run.dir={run_dir}", f"paths.cache_dir={reference['cache']}"]
    # Writes per epoch: the best checkpoint, then last.ckpt. The 4th write is epoch 2's last.ckpt.
    killed(run_train(args, base, kill_at="save4"))
    checkpoints = run_dir / "checkpoints"
    leftovers = [p.name for p in checkpoints.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".last.ckpt.")  # the half-written file, not last.ckpt
    import torch

    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 0  # epoch 1's, whole
    ok(run_train([f"resume={run_dir}"], base))
    assert metrics(run_dir) == reference["metrics"]
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]  # the partial file was removed


def test_killed_during_test_resumes_to_the_same_metrics(reference):
    base, run_dir = reference["base"], reference["base"] / "test"
    args = [*TINY, f"hydra.run.dir={run_dir}", f"paths.cache_dir={reference['cache']}"]
    killed(run_train(args, base, kill_at="test"))
    eval_result = subprocess.run(
        [str(Path(sys.executable).parent / "lmrec-eval"), f"run={run_dir}", f"hydra.run.dir={base / 'eval'}"],
        capture_output=True,
        text=True,
        cwd=base,
        env={**os.environ, "HOME": str(base)},
        timeout=300,
    )
    one_line_error(eval_result, "has no run.json: the run did not finish")
    out = ok(run_train([f"resume={run_dir}"], base))
    assert "max_epochs=3` reached" in out  # nothing left to train: straight to the test
    assert metrics(run_dir) == reference["metrics"]


def test_killed_while_encoding_item_texts_is_rerun_to_the_same_metrics(tmp_path):
    """The frozen packaged MiniLM: the kill lands while the catalogue's texts are being encoded."""
    text = [
        "data.max_users=8",
        "model.encoder.max_length=32",
        "model.encoder.batch_size=64",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "deterministic=true",
        "logger=csv",
    ]
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    ok(run_train([*text, f"hydra.run.dir={reference_dir}", f"paths.cache_dir={tmp_path / 'cache_a'}"], tmp_path))
    args = [*text, f"hydra.run.dir={run_dir}", f"paths.cache_dir={tmp_path / 'cache_b'}"]
    killed(run_train(args, tmp_path, kill_at="encoding"))
    assert not list((tmp_path / "cache_b" / "item_embeddings").glob("*.safetensors"))
    one_line_error(run_train([f"resume={run_dir}"], tmp_path), "nothing to continue; run it again")
    out = ok(run_train([*args, "overwrite=true"], tmp_path))
    assert "already encoded by an earlier run" in out  # the finished part is reused, verified by its key
    assert metrics(run_dir) == metrics(reference_dir)
