"""What every result of `lmrec.compare` shares: the input matrices, per-column results, and the moments.

Results hold one numpy array per figure, one entry per column, rather than one object per metric: the statistics
are computed on all columns at once, and a report takes a row (`row`) or a run's columns (`columns`) out of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


def as_matrix(values: ArrayLike, name: str = "values") -> np.ndarray:
    """`values` as a float64 users x columns matrix (a vector is one column). ±inf is refused: NaN is the one
    way to say "undefined", and an infinite metric value is a bug upstream that would turn every mean infinite."""
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be users x columns (2-D), got shape {matrix.shape}")
    if np.isinf(matrix).any():
        raise ValueError(f"{name} holds ±inf; use NaN for a metric that is undefined for a user")
    return matrix


@dataclass(frozen=True, eq=False)
class Columns:
    """Per-column arrays with the helpers a report needs: one row as plain Python numbers, a subset of columns."""

    def __len__(self) -> int:
        return len(self.n)  # type: ignore[attr-defined]

    def _arrays(self) -> list[str]:
        return [f.name for f in fields(self) if f.name != "settings"]

    def row(self, column: int) -> dict[str, float | int]:
        """Column `column`'s figures as plain floats and ints (NaN stays NaN: the report decides how to show it)."""
        return {name: getattr(self, name)[column].item() for name in self._arrays()}

    def columns(self, index: slice | Sequence[int]) -> Any:
        """The same result restricted to some columns (e.g. one run's metrics out of a stacked call)."""
        index = index if isinstance(index, slice) else np.asarray(index)
        return replace(self, **{name: getattr(self, name)[index] for name in self._arrays()})


def column_moments(values0: np.ndarray, defined: np.ndarray, confidence: float) -> dict[str, np.ndarray]:
    """n, mean, std (ddof=1), t statistic of mean = 0, its two-sided p and the t-interval of the mean, per column
    (`values0`: undefined entries as 0). The same formulas as `scipy.stats.ttest_rel` / `ttest_1samp`, on every
    column at once, since scipy's NaN omission loops over columns one by one."""
    n = defined.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = values0.sum(axis=0) / n
        centred = np.where(defined, values0 - mean, 0.0)
        std = np.sqrt(np.einsum("ij,ij->j", centred, centred) / (n - 1))
        se = std / np.sqrt(n)
        t = mean / se
        df = np.where(n >= 2, n - 1, 1)
        p = 2.0 * stats.t.sf(np.abs(t), df)
        half = stats.t.ppf(0.5 + confidence / 2.0, df) * se
    small = n < 2
    for array in (std, t, p, half):
        array[small] = np.nan
    return {"n": n, "mean": mean, "std": std, "t": t, "p": p, "low": mean - half, "high": mean + half}


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, with 0 / anything = 0 (no change is no change, even from a mean of 0) and
    nonzero / 0 = NaN (a relative change from nothing is undefined)."""
    out = np.full(np.broadcast_shapes(numerator.shape, denominator.shape), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    out[numerator == 0] = 0.0
    return out
