"""A Lightning callback for benchmarks: the training time of each epoch, without validation, written to JSON.

Added to a run from the command line by bench_ddp.py (scripts/ on PYTHONPATH):
    +callbacks.fit_timer._target_=fit_timer.FitTimer +callbacks.fit_timer.path=<file>
An epoch's time runs from its start to the end of its last training batch, so the validation pass that follows
and the process start-up are not counted. Rank zero writes the file (with the peak GPU memory on a GPU); the
ranks move in step (gradient all-reduce).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


class FitTimer(pl.Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.epochs: list[float] = []
        self.batches: list[int] = []
        self._start = self._last = 0.0
        self._count = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._count = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        self._last = time.perf_counter()
        self._count += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs.append(self._last - self._start)
        self.batches.append(self._count)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            payload = {
                "epoch_train_s": self.epochs,
                "batches_per_rank": self.batches,
                "world_size": trainer.world_size,
                "cuda_peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
            }
            self.path.write_text(json.dumps(payload, indent=2) + "\n")
