"""Peak-memory bookkeeping: each job of a multirun process must report its own peak, not an earlier job's."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lmrec.runtime.resources import peak_memory_mb, reset_peak_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the resettable high-water mark is Linux's")
def test_peak_memory_is_reset_between_jobs():
    block = np.ones(400 * 2**20 // 8)  # 400 MiB, touched
    high = peak_memory_mb()
    del block
    reset_peak_memory()
    low = peak_memory_mb()
    assert high - low > 300  # the earlier block no longer counts
    again = np.ones(200 * 2**20 // 8)
    assert peak_memory_mb() - low > 150  # a new allocation raises the new peak
    del again
