"""`lmrec-eval` and `lmrec-export` on run folders that are damaged or do not fit: one line, exit code 2."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from tests.helpers import compose_train, run_cli


def _run_folder(tmp_path):
    run_dir = tmp_path / "run"
    cfg = compose_train(["data.max_users=10", "model/item_tower=id", "logger=csv"], run_dir, tmp_path / "cache")
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / "checkpoints").mkdir()
    torch.save({"state_dict": {"w": torch.ones(1000)}}, run_dir / "checkpoints" / "whole.ckpt")
    truncated = run_dir / "checkpoints" / "truncated.ckpt"
    truncated.write_bytes((run_dir / "checkpoints" / "whole.ckpt").read_bytes()[:300])
    return run_dir


def _one_line_error(result, expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "Error: " in line]
    assert len(errors) == 1 and expected in errors[0], errors


def test_damaged_run_folders_fail_in_one_line(tmp_path):
    run_dir = _run_folder(tmp_path)
    common = [f"hydra.run.dir={tmp_path / 'out'}", f"paths.cache_dir={tmp_path / 'cache'}"]
    truncated = run_cli(
        "lmrec-eval", [f"run={run_dir}", "checkpoint=checkpoints/truncated.ckpt", *common], tmp_path, ok=False
    )
    _one_line_error(truncated, "CheckpointError: ")
    assert "truncated.ckpt is not a readable checkpoint" in truncated.stdout + truncated.stderr
    crashed = run_cli("lmrec-eval", [f"run={run_dir}", *common], tmp_path, ok=False)  # no run.json: never finished
    _one_line_error(crashed, "has no run.json: the run did not finish")
    unfit = run_cli("lmrec-eval", [f"run={run_dir}", "checkpoint=checkpoints/whole.ckpt", *common], tmp_path, ok=False)
    _one_line_error(unfit, "CheckpointError: ")
    assert "checkpoint does not fit this model" in unfit.stdout + unfit.stderr


def test_exporting_a_frozen_run_says_there_is_nothing_tuned(tmp_path):
    run_dir = _run_folder(tmp_path)
    args = [f"run={run_dir}", "checkpoint=checkpoints/truncated.ckpt", f"hydra.run.dir={tmp_path / 'x'}"]
    _one_line_error(run_cli("lmrec-export", args, tmp_path, ok=False), "model/tuning=frozen trains no encoder weights")
