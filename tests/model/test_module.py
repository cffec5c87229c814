"""The LightningModule's evaluation bookkeeping and the model builder's wiring, on a slice of the bundled data."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from tests.helpers import built_model, compose_train


def _model(tmp_path, *overrides):
    return built_model(
        compose_train(["data.max_users=20", "model/item_tower=id", *overrides], tmp_path, tmp_path / "cache")
    )


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
    train = datamodule.splits.matrix("train")
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
