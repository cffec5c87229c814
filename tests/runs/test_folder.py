"""Finding a run's config, checkpoints and records: what lmrec-eval, lmrec-export and init_from read."""

from __future__ import annotations

import json

import pytest

from lmrec.errors import InputError, MissingInputError, RunFolderError
from lmrec.runs.folder import check_same_data, locate_run, read_run_info, saved_config


def test_eval_picks_the_recorded_best_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (run_dir / "checkpoints").mkdir()
    for name in ("epoch001.ckpt", "last.ckpt"):
        (run_dir / "checkpoints" / name).write_bytes(b"x")
    (run_dir / "run.json").write_text(json.dumps({"checkpoint": "checkpoints/epoch001.ckpt"}))
    assert locate_run(str(run_dir), "best") == (run_dir, run_dir / "checkpoints" / "epoch001.ckpt")
    assert locate_run(str(run_dir), "last") == (run_dir, run_dir / "checkpoints" / "last.ckpt")
    assert locate_run(str(run_dir / "checkpoints" / "last.ckpt"), "best")[0] == run_dir


def test_a_crashed_run_says_it_has_no_run_json(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(MissingInputError, match="has no run.json: the run did not finish"):
        locate_run(str(run_dir), "best")
    assert read_run_info(run_dir) is None


def test_damaged_run_files_are_input_errors(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("seed: [1\n")
    with pytest.raises(InputError, match="not a readable config"):
        saved_config(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(InputError, match="run.json is not valid JSON"):
        read_run_info(tmp_path)


def test_data_with_another_fingerprint_is_refused(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"data_key": "abc"}))
    check_same_data(tmp_path, "abc")
    with pytest.raises(InputError, match="differs from the data the run trained on"):
        check_same_data(tmp_path, "def")


def test_a_recorded_checkpoint_outside_the_folder_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (tmp_path / "elsewhere.ckpt").write_bytes(b"x")
    (run_dir / "run.json").write_text(json.dumps({"checkpoint": "../elsewhere.ckpt"}))
    with pytest.raises(RunFolderError, match="lies outside the run folder"):
        locate_run(str(run_dir), "best")


def test_a_config_from_before_data_sources_says_so(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("data:\n  root: /data/ml-latest-small\n  task_kind: rating\n")
    with pytest.raises(RunFolderError, match="from before data sources"):
        saved_config(tmp_path)
