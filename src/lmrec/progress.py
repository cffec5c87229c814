"""Progress for long work outside the Lightning loop (encoding, caching).

A rich progress bar on a terminal; in a log (CI, a cluster job's output file) a bar is unreadable, so there a line is
logged at every tenth of the work instead.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

log = logging.getLogger(__name__)


@contextmanager
def progress_bar(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable that reports progress on `total` units of work."""
    if not enabled:
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        done = [0, 0]  # units done, tenths reported

        def advance(n: int) -> None:
            done[0] += n
            tenth = done[0] * 10 // max(total, 1)
            if tenth > done[1]:
                done[1] = tenth
                log.info("%s: %d/%d", description, done[0], total)

        yield advance
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
