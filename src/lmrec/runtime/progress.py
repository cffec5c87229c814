"""Progress for long work: encoding and caching outside the Lightning loop, and training epochs off a terminal.

A rich progress bar on a terminal; in a log (CI, a cluster job's output file) a bar is unreadable, so there a line is
logged at every tenth of the work instead.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text

log = logging.getLogger(__name__)


class RateColumn(ProgressColumn):
    """Units per second (texts/s while encoding): what tells a user whether a catalogue takes minutes or hours."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Any) -> Text:
        return Text(f"{task.speed:.1f} {self.unit}/s" if task.speed else "")


@contextmanager
def progress_bar(
    description: str, total: int, enabled: bool = True, unit: str = "items", completed: int = 0
) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable that reports progress on `total` units of work (`completed` already done,
    e.g. by an earlier run that was stopped), with the rate and the estimated time left."""
    if not enabled:
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        start, done = time.monotonic(), [completed, completed * 10 // max(total, 1)]  # units done, tenths reported

        def advance(n: int) -> None:
            done[0] += n
            tenth = done[0] * 10 // max(total, 1)
            if tenth > done[1]:
                done[1] = tenth
                rate = (done[0] - completed) / max(time.monotonic() - start, 1e-9)
                left = (total - done[0]) / rate if rate > 0 else float("nan")
                log.info("%s: %d/%d, %.1f %s/s, %.0f s left", description, done[0], total, rate, unit, left)

        yield advance
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=total, completed=completed)
        yield lambda n: progress.advance(task, n)


class TrainingProgressLog(pl.Callback):
    """Training progress as log lines when stderr is not a terminal (a cluster job's output file, CI).

    The rich progress bar draws nothing readable there, and a tuned-encoder epoch can run for an hour on a CPU;
    one line per tenth of each training epoch (step, loss, seconds per step, time left in the epoch) shows the
    job is alive and how long it will take. Lines come at least `min_interval` seconds apart, so the sub-second
    epochs of a frozen-encoder run log nothing. On a terminal the progress bar does this and the callback is silent.
    """

    def __init__(self, min_interval: float = 10.0, force: bool = False) -> None:
        self.enabled = force or not sys.stderr.isatty()
        self.min_interval = float(min_interval)
        self._start = self._last = 0.0
        self._tenths = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._tenths = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        total = trainer.num_training_batches
        if not self.enabled or not trainer.is_global_zero or not isinstance(total, int) or total < 1:
            return
        done = batch_idx + 1
        tenth = done * 10 // total
        now = time.perf_counter()
        if tenth <= self._tenths or now - self._last < self.min_interval:
            return
        self._tenths, self._last = tenth, now
        per_batch = (now - self._start) / done
        loss = trainer.callback_metrics.get("train/loss_step")
        loss_text = f", loss {float(loss):.4f}" if loss is not None else ""
        log.info(
            "epoch %d: batch %d/%d%s, %.3g s/batch, %.0f s left in the epoch",
            trainer.current_epoch,
            done,
            total,
            loss_text,
            per_batch,
            per_batch * (total - done),
        )
