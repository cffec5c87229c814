"""The shared timing helper: its statistics, its alternation order and its warm-up, against a scripted clock."""

from __future__ import annotations

import pytest

from lmrec.bench import timing
from lmrec.bench.timing import Timing, alternate, extrapolate, stopwatch


class ScriptedClock:
    """`time.perf_counter` that advances by the duration the running contender declares."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ScriptedClock:
    fake = ScriptedClock()
    monkeypatch.setattr(timing.time, "perf_counter", fake)
    return fake


def test_statistics_match_hand_computed_values():
    t = Timing((3.0, 1.0, 2.0, 10.0))
    assert t.median == 2.5  # (2 + 3) / 2: an even count averages the middle two
    assert (t.min, t.max, t.mean) == (1.0, 10.0, 4.0)
    summary = t.summary(units=100)
    assert summary["runs_s"] == [3.0, 1.0, 2.0, 10.0]
    assert summary["per_s"] == 40.0  # 100 units / 2.5 s
    assert summary["runs_per_s"] == [100 / 3, 100.0, 50.0, 10.0]
    assert Timing((5.0,)).median == 5.0
    assert extrapolate([1.0, 2.0, 3.0], 79) == 158.0  # mean 2 s x 79


def test_alternate_runs_contenders_in_turn_after_warm_up(clock):
    calls: list[str] = []
    durations = {"a": iter([9.0, 1.0, 3.0, 2.0]), "b": iter([9.0, 5.0, 4.0, 6.0])}  # the first of each: warm-up

    def contender(name: str):
        def run() -> str:
            calls.append(name)
            clock.now += next(durations[name])
            return f"{name} output {len(calls)}"

        return run

    result = alternate({"a": contender("a"), "b": contender("b")}, repeats=3, warmup=1)
    assert calls == ["a", "b", "a", "b", "a", "b", "a", "b"]  # warm-up round, then alternated, not blocked
    assert result.timings["a"].seconds == (1.0, 3.0, 2.0)
    assert result.timings["b"].seconds == (5.0, 4.0, 6.0)
    assert result.timings["a"].median == 2.0 and result.timings["b"].median == 5.0
    assert result.ratio("b", "a") == 2.5
    assert result.outputs == {"a": "a output 7", "b": "b output 8"}  # the last timed run's output


def test_rotation_and_separate_warm_up_callables(clock):
    calls: list[str] = []

    def record(name: str):
        return lambda: calls.append(name)

    alternate(
        {"a": record("a"), "b": record("b"), "c": record("c")}, repeats=3, rotate=True, warmup={"a": record("warm a")}
    )
    assert calls == ["warm a", "a", "b", "c", "b", "c", "a", "c", "a", "b"]
    with pytest.raises(ValueError):
        alternate({"a": record("a")}, repeats=0)


def test_stopwatch_calls_sync_before_start_and_stop(clock):
    events: list[str] = []

    def work() -> int:
        events.append("work")
        clock.now += 0.5
        return 7

    seconds, value = stopwatch(work, sync=lambda: events.append("sync"))
    assert (seconds, value) == (0.5, 7)
    assert events == ["sync", "work", "sync"]
