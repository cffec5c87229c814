"""Multiple-comparison correction across every comparison of a table (metrics x runs, one test's p-values).

Why correct at all: a table of 9 runs x 20 metrics makes 180 tests; at 5 % each, about 9 "significant" cells
appear when no model differs from the baseline. Why Holm by default: it controls the family-wise error rate (the
chance of any false claim) like Bonferroni under any dependence between the tests, and it is never less powerful,
so there is no reason to prefer plain Bonferroni except to match a paper that used it. Benjamini-Hochberg controls
the false discovery rate instead (the expected share of false claims among the claims), which suits screening
many metrics; its guarantee assumes positively dependent tests, which metrics computed on the same users are.

The arithmetic is statsmodels' `multipletests`, so the adjusted p-values and decisions are exactly its own.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

#: Accepted names -> statsmodels' method names.
METHODS = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh", "fdr_bh": "fdr_bh"}


class Correction(NamedTuple):
    """Adjusted p-values and decisions, in the shape of the p-values given; `family` is how many tests counted."""

    adjusted: np.ndarray
    reject: np.ndarray
    family: int
    method: str
    alpha: float


def adjust_pvalues(pvalues: ArrayLike, method: str = "holm", alpha: float = 0.05) -> Correction:
    """Correct a family of p-values (any shape: the whole table at once, e.g. runs x metrics).

    NaN p-values, tests that could not be made (a metric undefined on every user, a t-test over one seed), stay
    NaN, are never rejected and are not counted in the family: a test that was not made cannot produce a false
    claim, and counting it would make the others' correction stricter for nothing."""
    from statsmodels.stats.multitest import multipletests

    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    p = np.asarray(pvalues, dtype=np.float64)
    flat = p.ravel()
    made = ~np.isnan(flat)
    if ((flat[made] < 0) | (flat[made] > 1)).any():
        raise ValueError("p-values must lie in [0, 1] (or be NaN for a test that was not made)")
    adjusted = np.full(flat.shape, np.nan)
    reject = np.zeros(flat.shape, dtype=bool)
    if made.any():
        reject[made], adjusted[made], _, _ = multipletests(flat[made], alpha=alpha, method=METHODS[method])
    return Correction(adjusted.reshape(p.shape), reject.reshape(p.shape), int(made.sum()), METHODS[method], alpha)
