"""A run folder is data on the resume path: what its run_state.json records is checked before Hydra composes it."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from lmrec.errors import ConfigError, RunFolderError
from lmrec.runs.folder import config_sha256
from lmrec.runs.resume import resume_command_line


def _shared_folder(tmp_path, extra: str):
    """A real-looking run folder whose run_state.json someone extended with one override."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    cfg = OmegaConf.create({"seed": 1, "model": {"dim": 16}, "resume": None})
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    torch.save({"state_dict": {}, "epoch": 1}, run_dir / "checkpoints" / "last.ckpt")
    state = {"overrides": ["model.dim=16", extra], "config_sha256": config_sha256(cfg)}
    (run_dir / "run_state.json").write_text(json.dumps(state))
    return run_dir


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # Hydra instantiates hydra.callbacks without lmrec's allow-list: numpy.savetxt would write any file.
        ("+hydra.callbacks.w={_target_:numpy.savetxt,fname:VICTIM,X:[[1]],header:'x',comments:''}", "sets Hydra"),
        ("hydra.job.chdir=true", "sets Hydra"),
        ("hydra/launcher=slurm", "sets Hydra"),
        # builtins.open with mode w would truncate a file
        ("+model.x={_target_:builtins.open,_args_:[VICTIM,w]}", "model.x._target_=builtins.open is not on"),
        ("+trainer.profiler._target_=os.system", "trainer.profiler._target_=os.system is not on"),
    ],
)
def test_a_crafted_run_state_is_refused_before_anything_runs(tmp_path, extra, message):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run_dir = _shared_folder(tmp_path, extra.replace("VICTIM", str(victim)))
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises((RunFolderError, ConfigError), match=message):
        resume_command_line(["lmrec-train", f"resume={run_dir}"])
    assert victim.read_text() == "precious" and not (tmp_path / "VICTIM").exists()
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # nothing written or changed


def test_the_overrides_lmrec_records_still_resume(tmp_path):
    run_dir = _shared_folder(tmp_path, "model/head=mlp")
    argv = resume_command_line(["lmrec-train", f"resume={run_dir}"])
    assert argv[1:3] == ["model.dim=16", "model/head=mlp"]
    run_dir = _shared_folder(tmp_path / "b", "model.optimizer={_target_:torch.optim.Adam,_partial_:true,lr:0.01}")
    assert "model.optimizer={_target_:torch.optim.Adam,_partial_:true,lr:0.01}" in resume_command_line(
        ["lmrec-train", f"resume={run_dir}"]
    )


def test_overwrite_never_starts_in_a_folder_of_someone_elses_files(tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match=r"holds files lmrec did not write \(notes.txt\)"):
        resume_command_line(["lmrec-train", f"hydra.run.dir={folder}", "overwrite=true"])
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # refused before Hydra wrote .hydra/ or a log
