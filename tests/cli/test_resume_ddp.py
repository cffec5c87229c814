"""Resume under DDP, and early stopping across a resume: `lmrec-train` killed with SIGKILL and resumed with
`resume=<run dir>` ends exactly where the uninterrupted run ends (same epochs, best checkpoint and test metrics).

The kills come from the harness of `tests/cli/test_crash.py` (the process kills itself at an exact point). Under
DDP, Lightning starts rank 1 as `python -m lmrec.cli.train ...`; the prefix below makes it run the same harness, so
both ranks kill themselves at the same step instead of rank 1 waiting for a rank zero that is gone.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from lmrec.runs.checkpoints import load_checkpoint
from lmrec.runs.rng_state import CHECKPOINT_KEY, PER_RANK_KEY, STOP_KEY, collect_rng_states, states_for_rank
from tests.cli.test_crash import HARNESS, TINY, killed, metrics, ok, run_train

#: Run before the crash harness: the DDP ranks Lightning starts run the harness too (with the same arguments).
RANKS_RUN_THE_HARNESS = r"""
import lmrec.runtime.distributed as _distributed

_harness, _job_command = __file__, _distributed.job_subprocess_command


def _rank_command(module, local_rank):
    command, cwd = _job_command(module, local_rank)
    assert command[1:3] == ["-m", module], command
    return [command[0], _harness, *command[3:]], cwd


_distributed.job_subprocess_command = _rank_command
"""

#: Two CPU processes (gloo), 31 users (ranks get unequal shares). The history tower's dropout draws one number per
#: history entry of a batch's users, so with small batches the two ranks' generators drift apart: a resume that
#: gave every rank rank zero's states (as lmrec did before) ends with other metrics.
DDP = [
    "trainer=ddp_sim",
    "data.max_users=31",
    "data.batch_size=16",
    "model/item_tower=id",
    "model/user_tower=history",
    "model.user_tower.dropout=0.5",
    "model/head=mlp",
    "task=ranking",
    "task.loss=bpr",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=2",
    "deterministic=true",
    "logger=csv",
]


def ddp_home(tmp_path: Path) -> Path:
    """A HOME whose harness (which `run_train` reuses when present) also makes the DDP ranks run it."""
    home = tmp_path / "ddp"
    home.mkdir()
    (home / "lmrec_train_harness.py").write_text(RANKS_RUN_THE_HARNESS + HARNESS)
    return home


def run_info(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_a_ddp_run_killed_after_epoch_1_resumes_to_bit_identical_metrics(tmp_path):
    home = ddp_home(tmp_path)
    args = [*DDP, f"paths.cache_dir={tmp_path / 'cache'}"]
    reference, run_dir = tmp_path / "reference", tmp_path / "run"
    with ThreadPoolExecutor(2) as pool:  # independent runs: side by side (the test's time is mostly start-up)
        first = pool.submit(run_train, [*args, f"hydra.run.dir={reference}"], home)
        second = pool.submit(run_train, [*args, f"hydra.run.dir={run_dir}"], home, "step3")  # epoch 2, 2nd step
        ok(first.result())
        killed(second.result())
    assert not (run_dir / "metrics.json").exists()
    saved = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert saved["epoch"] == 0 and saved["global_step"] == 2  # epoch 1 ended, epoch 2 was cut off
    per_rank = saved[PER_RANK_KEY]
    assert len(per_rank) == 2 and torch.equal(saved[CHECKPOINT_KEY]["torch"], per_rank[0]["torch"])
    assert not torch.equal(per_rank[0]["torch"], per_rank[1]["torch"])  # the ranks' streams did drift apart

    out = ok(run_train([f"resume={run_dir}"], home))
    assert "Restoring states from the checkpoint path" in out
    assert "resuming" in (run_dir / "train_rank1.log").read_text()  # rank 1 resumed too, in the same folder
    assert metrics(run_dir) == metrics(reference)  # bit-identical, not approximately
    assert run_info(run_dir)["epochs"] == run_info(reference)["epochs"] == 2


def test_each_rank_takes_its_own_states_and_another_world_size_is_warned(caplog):
    torch.manual_seed(0)
    zero = collect_rng_states()
    torch.rand(3)
    one = collect_rng_states()
    checkpoint = {CHECKPOINT_KEY: zero, PER_RANK_KEY: [zero, one]}
    assert states_for_rank(checkpoint, 1, 2) is one and states_for_rank(checkpoint, 0, 2) is zero
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="lmrec.runs.rng_state"):
        assert states_for_rank(checkpoint, 0, 4) is zero  # 4 processes now: every rank takes rank zero's
        assert states_for_rank({CHECKPOINT_KEY: zero}, 0, 2) is zero  # a checkpoint from before per-rank states
        assert states_for_rank({CHECKPOINT_KEY: zero}, 0, 1) is zero  # one process, as written: no warning
        assert states_for_rank({}, 0, 1) is None
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "the checkpoint holds the random generator states of 2 process(es), this run has 4",
        "the checkpoint holds the random generator states of 1 process(es), this run has 2",
        "the checkpoint holds no random generator states; the resumed epochs will draw differently",
    ]


#: Early stopping with patience 2 that counts only improvements of at least 0.5 NDCG (none on this slice), while
#: the checkpoint callback keeps every epoch that improves at all. So early stopping stops on epoch 3, which
#: improved, and its last.ckpt holds the decision to stop; max_epochs=6 leaves room to train on.
EARLY = [
    *(a for a in TINY if not a.startswith("trainer.max_epochs")),
    "trainer.max_epochs=6",
    "callbacks.early_stopping.patience=2",
    "callbacks.early_stopping.min_delta=0.5",
]


def test_early_stopping_stops_at_the_same_epoch_after_a_resume(tmp_path):
    args = [*EARLY, f"paths.cache_dir={tmp_path / 'cache'}"]
    reference, run_dir = tmp_path / "reference", tmp_path / "run"
    ok(run_train([*args, f"hydra.run.dir={reference}"], tmp_path))
    expected = run_info(reference)
    assert expected["epochs"] == 3 and expected["checkpoint"] == "checkpoints/epoch002.ckpt"  # stopped early
    # Killed in epoch 3 (4 steps per epoch): the resume continues early stopping's count (1 epoch without
    # improvement) from last.ckpt and stops after epoch 3; killed again while it tests.
    killed(run_train([*args, f"hydra.run.dir={run_dir}"], tmp_path, kill_at="step9"))
    killed(run_train([f"resume={run_dir}"], tmp_path, kill_at="test"))
    last = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 2 and last[STOP_KEY] is True
    # This resume starts from a checkpoint that decided to stop: it trains no epoch and goes straight to the test.
    out = ok(run_train([f"resume={run_dir}"], tmp_path))
    assert "decided to stop" in out
    assert load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == last["global_step"]
    assert metrics(run_dir) == metrics(reference)
    got = run_info(run_dir)
    assert (got["epochs"], got["checkpoint"], got["best_value"]) == (3, expected["checkpoint"], expected["best_value"])
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["epoch002.ckpt", "last.ckpt"]
