"""The LightningModule's evaluation bookkeeping and the model builder's wiring, on a slice of the bundled data."""

from __future__ import annotations

import json

import pytorch_lightning as pl
import torch

from lmrec.builder import build_model
from lmrec.data.splits import TRAIN
from lmrec.eval import locate_run
from lmrec.train import build_datamodule
from tests.helpers import compose_train


def _model(tmp_path, *overrides):
    cfg = compose_train(["data.max_users=20", "model/item_tower=id", *overrides], tmp_path, tmp_path / "cache")
    datamodule = build_datamodule(cfg, tmp_path)
    return build_model(cfg, datamodule), datamodule


def _trainer(tmp_path):
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(tmp_path),
        max_epochs=1,
        enable_model_summary=False,
    )


def test_history_tower_sees_training_interactions_only(tmp_path):
    model, datamodule = _model(tmp_path, "model/user_tower=history")
    train = datamodule.interaction_matrix(TRAIN)
    assert torch.equal(model.user_tower.col, train.col) and torch.equal(model.user_tower.crow, train.crow)


def test_validation_is_repeatable_and_leaves_no_state_behind(tmp_path):
    model, datamodule = _model(tmp_path, "task=ranking", "model/user_tower=history")
    trainer = _trainer(tmp_path)
    first = trainer.validate(model, datamodule=datamodule, verbose=False)
    second = trainer.validate(model, datamodule=datamodule, verbose=False)
    assert first == second  # metric states are reset between passes
    assert model._frozen_item_vectors is None  # training steps see live item vectors again
    batch = next(iter(datamodule.train_dataloader()))
    model.task.training_loss(model, batch).backward()
    assert model.item_tower.embedding.weight.grad.abs().sum() > 0


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
