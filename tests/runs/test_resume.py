"""Run folders hold one run: refusing, clearing, resuming; checkpoints written whole; generator states saved."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lmrec.errors import CheckpointError, ConfigError, RunFolderError
from lmrec.runs.checkpoints import AtomicCheckpointIO, prune_stale_checkpoints
from lmrec.runs.folder import check_fresh_run_folder, check_records_match_config, config_sha256
from lmrec.runs.resume import open_run_folder, resume_command_line
from lmrec.runs.rng_state import collect_rng_states, set_rng_states
from lmrec.runs.wandb_identity import use_run_identity


def _started_run(tmp_path, overrides=("model.dim=16",), checkpoint=True):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    cfg = OmegaConf.create({"seed": 1, "model": {"dim": 16}, "resume": None})
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    state = {"overrides": list(overrides), "config_sha256": config_sha256(cfg), "config": OmegaConf.to_container(cfg)}
    (run_dir / "run_state.json").write_text(json.dumps(state))
    if checkpoint:
        (run_dir / "checkpoints").mkdir()
        torch.save({"state_dict": {}, "epoch": 1}, run_dir / "checkpoints" / "last.ckpt")
    return run_dir, cfg


def test_resume_becomes_the_runs_own_overrides(tmp_path):
    run_dir, _ = _started_run(tmp_path)
    argv = resume_command_line(["lmrec-train", f"resume={run_dir}"])
    assert argv == ["lmrec-train", "model.dim=16", f"hydra.run.dir={run_dir}", f"resume={run_dir}"]
    # A DDP rank is started with every override repeated: that resumes too, and stays the same command line.
    assert resume_command_line(argv[:1] + ["model.dim=16", "hydra.mode=RUN", f"resume={run_dir}"]) == [
        "lmrec-train",
        "model.dim=16",
        "hydra.mode=RUN",
        f"hydra.run.dir={run_dir}",
        f"resume={run_dir}",
    ]
    assert resume_command_line(["lmrec-train", "seed=3"]) == ["lmrec-train", "seed=3"]


def test_a_resume_that_changes_the_config_or_has_nothing_to_continue_is_refused(tmp_path):
    run_dir, _ = _started_run(tmp_path)
    with pytest.raises(ConfigError, match=r"model.dim=32 would change it"):
        resume_command_line(["lmrec-train", f"resume={run_dir}", "model.dim=32"])
    with pytest.raises(ConfigError, match="resume each job of a sweep"):
        resume_command_line(["lmrec-train", "-m", f"resume={run_dir}"])
    with pytest.raises(ConfigError, match="names another one"):
        resume_command_line(["lmrec-train", f"resume={run_dir}", f"hydra.run.dir={tmp_path}"])
    (run_dir / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(RunFolderError, match=r"no checkpoints/last.ckpt .* run it again: lmrec-train model.dim=16"):
        resume_command_line(["lmrec-train", f"resume={run_dir}"])
    with pytest.raises(RunFolderError, match="not an lmrec run folder"):
        resume_command_line(["lmrec-train", f"resume={tmp_path / 'absent'}"])


def test_resuming_under_a_changed_config_names_the_key(tmp_path):
    run_dir, cfg = _started_run(tmp_path)
    checkpoint, _ = open_run_folder(OmegaConf.merge(cfg, {"resume": str(run_dir)}), run_dir, [], 1)
    assert checkpoint == run_dir / "checkpoints" / "last.ckpt"
    assert json.loads((run_dir / "run_state.json").read_text())["resumes"] == 1
    changed = OmegaConf.merge(cfg, {"resume": str(run_dir), "model": {"dim": 8}})
    with pytest.raises(RunFolderError, match="differs from the one the run started with at model.dim"):
        open_run_folder(changed, run_dir, [], 1)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="last.ckpt is not a readable checkpoint"):
        open_run_folder(OmegaConf.merge(cfg, {"resume": str(run_dir)}), run_dir, [], 1)


def test_a_folder_with_another_run_is_refused_or_cleared_but_never_of_foreign_files(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("log of this start\n")
    check_fresh_run_folder(tmp_path, overwrite=False)  # Hydra's own files do not count
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(RunFolderError, match="already holds a run .*resume=.*overwrite=true"):
        check_fresh_run_folder(tmp_path, overwrite=False)
    check_fresh_run_folder(tmp_path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hydra", "train.log"]
    (tmp_path / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match=r"files lmrec did not write \(notes.txt\)"):
            check_fresh_run_folder(tmp_path, overwrite=overwrite)
    assert (tmp_path / "notes.txt").is_file()


def test_refused_start_with_other_settings_keeps_the_folder_readable(tmp_path):
    from lmrec.runs.resume import start_run

    run_dir, cfg = _started_run(tmp_path)
    (run_dir / "run.json").write_text(json.dumps({"config_sha256": config_sha256(cfg)}))
    check_records_match_config(run_dir)
    other = OmegaConf.merge(cfg, {"model": {"dim": 32}})
    OmegaConf.save(other, run_dir / ".hydra" / "config.yaml")  # what Hydra writes before lmrec can refuse
    with pytest.raises(RunFolderError, match="written for another config"):
        check_records_match_config(run_dir)
    with pytest.raises(RunFolderError, match="already holds a run"):
        start_run(other, run_dir, ["model.dim=32"], 1)
    check_records_match_config(run_dir)  # the earlier run's config was put back
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").model.dim == 16


def test_the_wandb_logger_gets_the_recorded_run_id():
    cfg = OmegaConf.create({"logger": {"wandb": {"_target_": "pytorch_lightning.loggers.WandbLogger", "group": "g"}}})
    use_run_identity(cfg.logger, {"wandb": {"id": "abc123", "group": "sweep-7", "job_type": "dim=8"}})
    assert dict(cfg.logger.wandb) == {
        "_target_": "pytorch_lightning.loggers.WandbLogger",
        "group": "sweep-7",
        "id": "abc123",
        "resume": "allow",
        "job_type": "dim=8",
    }


def test_a_checkpoint_killed_mid_write_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, target)

    def half_then_crash(payload, path):
        with open(path, "wb") as handle:
            handle.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr("lmrec.runs.checkpoints.torch.save", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 2}, target)
    assert torch.load(target, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_checkpoints_written_after_the_resumed_one_are_removed(tmp_path):
    for name in ("epoch001.ckpt", "epoch002.ckpt", "last.ckpt", ".last.ckpt.x1.tmp", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    state = {"best_model_path": str(tmp_path / "epoch001.ckpt"), "last_model_path": str(tmp_path / "last.ckpt")}
    payload = {"callbacks": {"ModelCheckpoint{'monitor': 'val/rmse'}": state}}
    removed = prune_stale_checkpoints(tmp_path, tmp_path / "last.ckpt", payload)
    assert sorted(p.name for p in removed) == [".last.ckpt.x1.tmp", "epoch002.ckpt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch001.ckpt", "last.ckpt", "notes.txt"]


def test_generator_states_survive_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    torch.save({"rng": collect_rng_states()}, tmp_path / "states.ckpt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    set_rng_states(torch.load(tmp_path / "states.ckpt", weights_only=True)["rng"])
    drawn = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(drawn[0], expected[0]) and np.array_equal(drawn[1], expected[1]) and drawn[2] == expected[2]
