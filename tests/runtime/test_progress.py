"""Training progress off a terminal: a log line per tenth of each epoch, with the step count and time left."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lmrec.runtime.progress import TrainingProgressLog


class _Regression(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss_step", loss, on_step=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _progress_lines(tmp_path, caplog, callback: TrainingProgressLog) -> list[str]:
    data = TensorDataset(torch.randn(25, 3), torch.randn(25, 1))
    trainer = pl.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[callback],
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lmrec.runtime.progress"):
        trainer.fit(_Regression(), DataLoader(data, batch_size=1))
    return [r.getMessage() for r in caplog.records if r.name == "lmrec.runtime.progress"]


def test_training_progress_is_logged_in_tenths_of_each_epoch(tmp_path, caplog):
    lines = _progress_lines(tmp_path, caplog, TrainingProgressLog(min_interval=0, force=True))
    assert len(lines) == 20  # 10 per epoch, 25 batches each
    assert lines[0].startswith("epoch 0: batch 3/25, loss ") and lines[9].startswith("epoch 0: batch 25/25")
    assert lines[10].startswith("epoch 1: batch 3/25") and lines[-1].endswith("0 s left in the epoch")


def test_fast_epochs_log_no_progress(tmp_path, caplog):
    """Lines are at least min_interval apart: a sub-second epoch (a frozen-encoder run) stays quiet."""
    assert _progress_lines(tmp_path, caplog, TrainingProgressLog(min_interval=60, force=True)) == []
