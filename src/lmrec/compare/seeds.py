"""Comparisons over training seeds: the same seed is the same split for both models, so seeds pair too.

Two questions, two levels. Per seed: on this split, are B's users better off than A's (`paired_tests`, users as
the unit)? Over seeds: is B's mean better than A's whichever split and initialisation we draw (a paired t-test
over the seeds' means, seeds as the unit)? The first has thousands of users and little variance from them; the
second captures what the first cannot see, the variance from training and splitting, but has only a few seeds.

With 2 seeds the seed-level test is defined (1 degree of freedom; it needs a very large t to reject). With 1
seed it is not: one value carries no information about seed-to-seed variance, so its t, p, std and interval are
NaN (and the multiple-comparison correction leaves the NaN p-values out), while the per-seed test still stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lmrec.compare.columns import Columns, as_matrix, column_moments
from lmrec.compare.statistics import TESTS, PairedTests, paired_t, paired_tests


@dataclass(frozen=True, eq=False)
class SeedSummary(Columns):
    """Mean ± std of per-seed values, per column, with the t-interval of the mean over seeds."""

    n: np.ndarray  #: int, seeds with a defined value
    mean: np.ndarray
    std: np.ndarray  #: over seeds (ddof=1); NaN with one seed
    t_low: np.ndarray
    t_high: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class SeedComparison:
    """Per-seed paired tests and the seed-level comparison of B with A (arrays: one entry per column)."""

    per_seed: tuple[PairedTests, ...]  #: one per pair, in the order given
    a: SeedSummary  #: the seeds' means of A (each over the users defined on both sides of its pair)
    b: SeedSummary
    diff: SeedSummary  #: the seeds' mean B - mean A
    t_statistic: np.ndarray  #: paired t over seeds, = scipy.stats.ttest_rel(seed means of B, seed means of A)
    t_pvalue: np.ndarray


def summarize_seeds(values: ArrayLike, confidence: float = 0.95) -> SeedSummary:
    """Mean, std and t-interval over seeds of `values` (seeds x columns, e.g. each seed's mean NDCG@10; NaN: the
    seed lacks it). The t-interval rather than a bootstrap: with 3 to 5 seeds a bootstrap can only reshuffle
    those few values and comes out too narrow, while the t-interval accounts for how little they say."""
    x = as_matrix(values)
    defined = ~np.isnan(x)
    moments = column_moments(np.where(defined, x, 0.0), defined, confidence)
    return SeedSummary(
        n=moments["n"],
        mean=moments["mean"],
        std=moments["std"],
        t_low=moments["low"],
        t_high=moments["high"],
        settings={"confidence": confidence},
    )


def compare_seeds(
    pairs: Sequence[tuple[ArrayLike, ArrayLike]],
    tests: Sequence[str] = TESTS,
    *,
    confidence: float = 0.95,
    **options: Any,
) -> SeedComparison:
    """Compare B with A seed by seed and over seeds. `pairs`: one (a, b) per seed, each users x columns with its
    users aligned (seeds may have different users; every pair has the same columns). `options` go to
    `paired_tests` (permutations, resamples, seed, zero_method, higher_is_better): each per-seed result is
    exactly `paired_tests(a, b, tests, confidence=confidence, **options)` of that pair alone."""
    if not pairs:
        raise ValueError("compare_seeds needs at least one (a, b) pair")
    per_seed = tuple(paired_tests(a, b, tests, confidence=confidence, **options) for a, b in pairs)
    if len({len(result) for result in per_seed}) != 1:
        raise ValueError("every seed's pair must have the same columns")
    means_a = np.stack([result.mean_a for result in per_seed])
    means_b = np.stack([result.mean_b for result in per_seed])
    diffs = means_b - means_a  # as ttest_rel forms them, so the seed-level t equals scipy's
    defined = ~np.isnan(diffs)
    t = paired_t(np.where(defined, diffs, 0.0), defined, confidence)
    # The same difference on every seed (deterministic models: EASE, ItemKNN, a frozen reranker's seeds change only
    # tie orders) says nothing about the seed-to-seed variance the test divides by; t would be infinite and p 0, a
    # "significant" result no evidence supports. Such seeds are one measurement repeated: the test is undefined.
    repeated = (t["n"] >= 2) & (t["std"] == 0) & (t["mean"] != 0)
    t["t"][repeated], t["p"][repeated] = np.nan, np.nan
    return SeedComparison(
        per_seed=per_seed,
        a=summarize_seeds(means_a, confidence),
        b=summarize_seeds(means_b, confidence),
        diff=summarize_seeds(diffs, confidence),
        t_statistic=t["t"],
        t_pvalue=t["p"],
    )
