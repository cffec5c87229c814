"""What an adversarial new user tried: each case is refused in one line (exit code 2), or works and says so."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lmrec.cache_integrity import check_cache_dir, entry_lock
from lmrec.data.io.errors import DataValidationError, check_readable
from lmrec.errors import ConfigError, report_input_errors
from lmrec.runs.folder import rebuild_config
from tests.helpers import run_cli

TINY = ["model=mf", "data.max_users=30", "trainer.max_epochs=1", "logger=csv"]


@pytest.mark.parametrize(
    "stop",
    [["trainer.limit_val_batches=0"], ["+trainer.max_steps=5", "data.batch_size=64"]],
    ids=["no validation", "stopped within the first epoch"],
)
def test_a_run_that_stops_before_its_first_validation_tests_its_last_weights(stop, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(
        "lmrec-train", [*TINY, *stop, f"hydra.run.dir={run_dir}", f"paths.cache_dir={tmp_path / 'c'}"], tmp_path
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"test/rmse", "test/mae", "test/auc"}  # no best/val/rmse: nothing was validated
    assert json.loads((run_dir / "run.json").read_text())["tested"].startswith("last weights")
    assert "testing the last weights" in result.stdout + result.stderr
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()  # and a resume has something to continue from


def test_a_time_limit_is_a_limit(tmp_path):
    """min_epochs (1 by default) no longer keeps a run going past max_time, saying once per step it should stop."""
    run_dir = tmp_path / "run"
    arguments = [*TINY, "trainer.max_epochs=200", "~callbacks.early_stopping", "trainer.max_time=00:00:00:01"]
    result = run_cli("lmrec-train", [*arguments, f"hydra.run.dir={run_dir}", f"paths.cache_dir={tmp_path / 'c'}"],
                     tmp_path)  # fmt: skip
    output = result.stdout + result.stderr
    assert "the run stops when time is up" in output and "signaled to stop" not in output
    assert json.loads((run_dir / "run.json").read_text())["epochs"] < 200


def _folder_with(tmp_path: Path, trainer: dict) -> Path:
    run_dir = tmp_path / "shared"
    (run_dir / ".hydra").mkdir(parents=True)
    early = {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "x"}
    trainer = {"_target_": "pytorch_lightning.Trainer", **trainer}
    cfg = {"data": {"source": {}}, "trainer": trainer, "callbacks": {"e": early}}
    OmegaConf.save(OmegaConf.create(cfg), run_dir / ".hydra" / "config.yaml")
    return run_dir


@pytest.mark.parametrize(
    "piece",
    [
        {"profiler": {"_target_": "pytorch_lightning.profilers.SimpleProfiler", "dirpath": "OUT", "filename": "x"}},
        {"plugins": [{"_target_": "lightning_fabric.plugins.io.torch_io.TorchCheckpointIO"}]},
        {"strategy": {"_target_": "pytorch_lightning.strategies.DDPStrategy"}},
        {"callbacks": [{"_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "dirpath": "OUT"}]},
    ],
    ids=["profiler", "plugin", "strategy", "callback"],
)
def test_a_run_folders_trainer_names_no_lightning_piece_with_side_effects(piece, tmp_path):
    out = tmp_path / "written-by-the-folder"
    piece = json.loads(json.dumps(piece).replace("OUT", str(out)))
    with pytest.raises(ConfigError, match=r"is not on lmrec's allow-list .* treat this folder as untrusted"):
        rebuild_config(_folder_with(tmp_path, piece))
    assert not out.exists()


def test_a_run_folders_own_callbacks_and_loggers_are_not_rebuilt(tmp_path):
    """A normal run folder names Lightning callbacks (early stopping, checkpoints): re-testing never builds them."""
    cfg = rebuild_config(_folder_with(tmp_path, {"accelerator": "cpu"}))
    assert "callbacks" not in cfg and cfg.trainer.accelerator == "cpu"


def test_a_cache_folder_lmrec_cannot_write_is_refused_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match=r"^paths.cache_dir=.*a-file is a file, not a folder; point paths.cache_dir"):
        check_cache_dir(tmp_path / "a-file")
    read_only = OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr("tempfile.NamedTemporaryFile", lambda **_: (_ for _ in ()).throw(read_only))
    with pytest.raises(ConfigError, match=r"cannot be written \(Read-only file system\); point paths.cache_dir"):
        check_cache_dir(tmp_path / "cache")


def test_lmrec_train_refuses_a_cache_folder_that_is_a_file_before_wandb_starts(tmp_path):
    (tmp_path / "cache").write_text("")
    places = [f"hydra.run.dir={tmp_path / 'run'}", f"paths.cache_dir={tmp_path / 'cache'}"]
    result = run_cli("lmrec-train", [*TINY[:-1], *places], tmp_path, ok=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "ConfigError: paths.cache_dir=" in result.stdout + result.stderr
    assert not (tmp_path / "run" / "wandb").exists()


@pytest.mark.parametrize(
    ("code", "advice"),
    [(errno.ENOSPC, "the disk is full"), (errno.EACCES, "fix its permissions"), (errno.EROFS, "read-only")],
)
def test_the_machines_refusals_are_one_line_naming_the_path(code, advice, caplog):
    with pytest.raises(SystemExit) as stop, caplog.at_level(logging.ERROR, logger="lmrec"), report_input_errors():
        raise OSError(code, os.strerror(code), "/data/cache/processed/abc/items.parquet")
    assert stop.value.code == 2
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("EnvironmentProblem: /data/cache/processed/abc/items.parquet: ") and advice in line
    with pytest.raises(OSError, match="Bad file descriptor"), report_input_errors():  # a bug keeps its traceback
        raise OSError(errno.EBADF, "Bad file descriptor")


def test_a_data_file_that_is_not_a_readable_file_says_what_it_is(tmp_path, monkeypatch):
    (tmp_path / "ratings.csv").mkdir()
    (tmp_path / "loop.csv").symlink_to(tmp_path / "loop.csv")
    (tmp_path / "gone.csv").symlink_to(tmp_path / "nowhere.csv")
    (tmp_path / "locked.csv").write_text("x")
    expected = {
        "ratings.csv": "a directory, where a file is expected",
        "loop.csv": "a symbolic link loop, not a file",
        "gone.csv": f"a symbolic link to {tmp_path / 'nowhere.csv'}, which does not exist",
        "missing.csv": "file not found",
    }
    for name, message in expected.items():
        with pytest.raises(DataValidationError, match=f"{name}: {message}"):
            check_readable(tmp_path / name)
    check_readable(tmp_path / "locked.csv")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root reads every file: ask as a user would
    with pytest.raises(DataValidationError, match=r"locked.csv: not readable \(permission denied\)"):
        check_readable(tmp_path / "locked.csv")


def test_lmrec_train_names_a_directory_where_ratings_should_be(bundled_data, tmp_path):
    data = tmp_path / "data" / "ml-latest-small"
    data.mkdir(parents=True)
    for name in ("movies.csv", "tags.csv"):
        (data / name).symlink_to(bundled_data / name)
    (data / "ratings.csv").mkdir()
    result = run_cli("lmrec-train", [*TINY, f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'r'}",
                                     f"paths.cache_dir={tmp_path / 'c'}"], tmp_path, ok=False)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "ratings.csv: a directory, where a file is expected" in result.stdout + result.stderr


def test_waiting_on_another_jobs_cache_build_is_said(tmp_path, caplog):
    entry, held = tmp_path / "processed" / "abc", threading.Event()

    def other_job() -> None:
        with entry_lock(entry):
            held.set()
            time.sleep(0.3)

    threading.Thread(target=other_job).start()
    held.wait()
    with caplog.at_level(logging.INFO, logger="lmrec.cache_integrity"), entry_lock(entry):
        pass
    assert [r.getMessage() for r in caplog.records] == [
        f"waiting for {entry}: another job holds {entry.parent / '.abc.lock'} while it builds or checks that entry"
    ]
