"""Time and memory a run costs: the "at what cost" half of every comparison lmrec makes."""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch


def peak_memory_mb(device: torch.device | None = None) -> float:
    """Peak memory so far: allocated GPU memory on CUDA, else the process's peak resident set (CPU)."""
    if device is not None and device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    high_water = _proc_status_kib("VmHWM")  # Linux: resettable by reset_peak_memory(), unlike ru_maxrss
    if high_water is not None:
        return high_water / 2**10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def reset_peak_memory(device: torch.device | None = None) -> None:
    """Start a new peak: the jobs of a multirun share one process, and each job's figure must be its own."""
    if device is not None and device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # elsewhere the peak stays the process's
        Path("/proc/self/clear_refs").write_text("5")  # Linux: resets VmHWM to the current resident set


def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class ResourceMonitor(pl.Callback):
    """Training seconds per epoch and per optimizer step (validation excluded) and peak memory, logged as `perf/*`
    and kept for run.json. Seconds per step is the figure that compares runs stopped by a time budget
    (`trainer.max_time`), whose last epoch is cut short.

    The peak counter is reset at fit start (GPU: allocated memory; Linux CPU: the resident-set high-water mark), so
    the figure is the training's own and not an earlier job's of the same multirun process; it includes the weights
    and data already in memory.
    """

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._epoch_start = 0.0
        self._validation_seconds = 0.0
        self._validation_start = 0.0
        self.peak_mb: float | None = None
        self.optimizer_steps = 0
        self.test_seconds: float | None = None
        self._test_start = 0.0
        self.device = "cpu"

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        reset_peak_memory(pl_module.device)

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

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.optimizer_steps = int(trainer.global_step)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._test_start = time.perf_counter()
        self.device = describe_device(pl_module.device)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The test pass's seconds: what scoring every test user costs (the evaluation half of the cost)."""
        self.test_seconds = time.perf_counter() - self._test_start
        if self.peak_mb is None:  # a run that trained no epoch (train=false): the peak of what it did
            self.peak_mb = peak_memory_mb(pl_module.device)

    def summary(self) -> dict[str, Any]:
        seconds = sum(self.epoch_seconds)
        return {
            "seconds_per_epoch": seconds / len(self.epoch_seconds) if self.epoch_seconds else None,
            "train_seconds": seconds,
            "optimizer_steps": self.optimizer_steps,
            "seconds_per_step": seconds / self.optimizer_steps if self.optimizer_steps else None,
            "peak_memory_mb": self.peak_mb,
            "test_seconds": self.test_seconds,
            "device": self.device,
        }


def describe_device(device: torch.device) -> str:
    """`cpu (2 cores)` or the GPU's name: where the seconds in run.json were measured."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os

    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
