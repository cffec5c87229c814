"""Time and memory a run costs: the "at what cost" half of every comparison lmrec makes."""

from __future__ import annotations

import resource
import sys
import time
from typing import Any

import pytorch_lightning as pl
import torch


def peak_memory_mb(device: torch.device | None = None) -> float:
    """Peak memory so far: allocated GPU memory on CUDA, else the process's peak resident set (CPU)."""
    if device is not None and device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class ResourceMonitor(pl.Callback):
    """Training seconds per epoch (validation excluded) and peak memory, logged as `perf/*` and kept for run.json.

    On GPU the peak counter is reset at fit start, so the figure is the training's own; on CPU it is the process
    peak, which includes loading data and the encoder.
    """

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._epoch_start = 0.0
        self._validation_seconds = 0.0
        self._validation_start = 0.0
        self.peak_mb: float | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()
        self._validation_seconds = 0.0

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._validation_seconds += time.perf_counter() - self._validation_start

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seconds = time.perf_counter() - self._epoch_start - self._validation_seconds
        self.epoch_seconds.append(seconds)
        self.peak_mb = peak_memory_mb(pl_module.device)
        pl_module.log_dict({"perf/train_epoch_seconds": seconds, "perf/peak_memory_mb": self.peak_mb})

    def summary(self) -> dict[str, Any]:
        per_epoch = sum(self.epoch_seconds) / len(self.epoch_seconds) if self.epoch_seconds else None
        return {"seconds_per_epoch": per_epoch, "peak_memory_mb": self.peak_mb}
