"""A Lightning callback that writes each epoch's training time (validation excluded) to a JSON file.

The ddp benchmark adds it to `lmrec-train` from the command line:
    +callbacks.fit_timer._target_=lmrec.bench.fit_timer.FitTimer +callbacks.fit_timer.path=<file>
which the config allow-list accepts because it is a class under `lmrec.`. An epoch's time runs from its start to
the end of its last training batch, so the validation pass that follows and the process start-up are not counted.
Rank zero writes the file (with the peak GPU memory on a GPU); the ranks move in step (gradient all-reduce).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch


class FitTimer(pl.Callback):
    """Training seconds and batches of every epoch, and the world size, written at the end of `fit`."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.epoch_seconds: list[float] = []
        self.batches: list[int] = []
        self._start = self._last = 0.0
        self._count = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """An epoch's clock starts here."""
        self._start = self._last = time.perf_counter()
        self._count = 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        """The epoch's training time ends at its last batch (validation follows)."""
        self._last = time.perf_counter()
        self._count += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Keep the epoch's training seconds and its batches on this rank."""
        self.epoch_seconds.append(self._last - self._start)
        self.batches.append(self._count)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Rank zero writes the file (the ranks move in step)."""
        if not trainer.is_global_zero:
            return
        payload = {
            "epoch_train_s": self.epoch_seconds,
            "batches_per_rank": self.batches,
            "world_size": trainer.world_size,
            "cuda_peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(payload, indent=2) + "\n")
