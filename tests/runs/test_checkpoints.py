"""Checkpoints are data: loaded with weights_only, and a damaged or foreign file is a one-line CheckpointError."""

from __future__ import annotations

import pytest
import torch

from lmrec.errors import CheckpointError, MissingInputError
from lmrec.runs.checkpoints import check_encoder_weights, load_checkpoint, load_matching_weights


class Payload:
    """Stands in for an object whose unpickling would run code of the file's author."""


def test_a_lightning_checkpoint_loads(tmp_path):
    path = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, path)
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(2))


def test_damaged_and_foreign_files_are_refused_with_one_line(tmp_path):
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated.ckpt is not a readable checkpoint") as info:
        load_checkpoint(truncated)
    assert "\n" not in str(info.value)
    executable = tmp_path / "code.ckpt"  # a pickled object whose loading would run code: never unpickled
    torch.save({"state_dict": {}, "hook": Payload()}, executable)
    with pytest.raises(CheckpointError, match="code.ckpt is not a readable checkpoint"):
        load_checkpoint(executable)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.ones(1)}, plain)
    with pytest.raises(CheckpointError, match="no 'state_dict' entry"):
        load_checkpoint(plain)
    with pytest.raises(MissingInputError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.ckpt")


def test_other_base_weights_and_unmatched_init_are_refused(tmp_path):
    check_encoder_weights(tmp_path, ["abc"], ["abc"])
    with pytest.raises(CheckpointError, match="trained on top of encoder weights"):
        check_encoder_weights(tmp_path, ["abc"], ["def"])
    model = torch.nn.Linear(2, 2)
    assert load_matching_weights(model, {"weight": torch.zeros(2, 2), "other": torch.ones(1)}, tmp_path) == 1
    assert torch.equal(model.weight, torch.zeros(2, 2))
    with pytest.raises(CheckpointError, match="no weight in it matches"):
        load_matching_weights(model, {"weight": torch.zeros(3)}, tmp_path)
