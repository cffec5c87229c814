"""The one timing loop every benchmark uses: warm-up, then alternating timed runs, reported as median/min/max.

Why alternate: on a shared machine the load drifts during a benchmark; running the contenders in turn (a, b, a, b)
rather than in blocks (a, a, b, b) makes a slow spell hit all of them alike, so their ratio stays fair. Why the
median: one run disturbed by a neighbour moves the mean, not the median. Min and max show the spread.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of the timed runs of one contender, in the order they ran."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median run: what a record compares."""
        return statistics.median(self.seconds)

    @property
    def min(self) -> float:
        """The fastest run."""
        return min(self.seconds)

    @property
    def max(self) -> float:
        """The slowest run."""
        return max(self.seconds)

    @property
    def mean(self) -> float:
        """The mean run (what an extrapolation multiplies)."""
        return statistics.fmean(self.seconds)

    def rate(self, units: float) -> float:
        """`units` per second at the median time (texts/s, rows/s): the median of the per-run rates, since
        rate = units / seconds is monotone in the time."""
        return units / self.median

    def summary(self, units: float | None = None) -> dict[str, Any]:
        """The figures a record keeps: every run, and median, min, max (and the rates if `units` is given)."""
        out: dict[str, Any] = {
            "median_s": self.median,
            "min_s": self.min,
            "max_s": self.max,
            "runs_s": list(self.seconds),
        }
        if units is not None:
            out["per_s"] = self.rate(units)
            out["runs_per_s"] = [units / s for s in self.seconds]
        return out


@dataclass
class Alternation:
    """What `alternate` measured: the timings of each contender and its last output (to compare outputs)."""

    timings: dict[str, Timing]
    outputs: dict[str, Any] = field(default_factory=dict)

    def ratio(self, numerator: str, denominator: str) -> float:
        """Median time of `numerator` over that of `denominator` (> 1: the numerator is slower)."""
        return self.timings[numerator].median / self.timings[denominator].median


def stopwatch(fn: Callable[[], Any], sync: Callable[[], None] | None = None) -> tuple[float, Any]:
    """(seconds, result) of one call; `sync` (e.g. torch.cuda.synchronize) runs before the start and the stop,
    so asynchronous device work is inside the measured interval."""
    if sync is not None:
        sync()
    start = time.perf_counter()
    result = fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start, result


def alternate(
    runs: Mapping[str, Callable[[], Any]],
    repeats: int,
    warmup: Mapping[str, Callable[[], Any]] | int = 1,
    rotate: bool = False,
    sync: Callable[[], None] | None = None,
    report: Callable[[str], None] | None = None,
) -> Alternation:
    """Warm up, then time every contender `repeats` times, in turn.

    `warmup`: untimed calls of each contender first (an int: that many calls of the timed callables; a mapping:
    its own callables, e.g. the same work on a few texts), so first-call costs (allocations, thread pools, lazy
    imports) stay out of the figures. `rotate`: start each round with the next contender, so none always runs
    first (right after another one's garbage). `report` gets one line per timed run."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if isinstance(warmup, int):
        for _ in range(warmup):
            for fn in runs.values():
                fn()
    else:
        for fn in warmup.values():
            fn()
    names: Sequence[str] = list(runs)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, Any] = {}
    for round_ in range(repeats):
        shift = round_ % len(names) if rotate else 0
        for name in [*names[shift:], *names[:shift]]:
            elapsed, outputs[name] = stopwatch(runs[name], sync)
            seconds[name].append(elapsed)
            if report is not None:
                report(f"run {round_ + 1}/{repeats} {name}: {elapsed:.3f} s")
    return Alternation({name: Timing(tuple(s)) for name, s in seconds.items()}, outputs)


def extrapolate(timed: Sequence[float], total: int) -> float:
    """The time of `total` units from the mean of the timed ones: what a benchmark reports (and labels as
    extrapolated) when running them all would take too long."""
    return statistics.fmean(timed) * total
