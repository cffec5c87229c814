"""Paired tests and intervals on per-user metric values: is B better than A on the same users, and by how much.

Inputs are matrices, users x columns (one column per metric, or per metric and run: any number of columns at
once), float64, NaN where a metric is undefined for a user. Every statistic of a column uses the users defined in
it (on both sides, for a pair); a column defined for nobody gives NaN everywhere, which the multiple-comparison
correction then leaves out of the family.

Why so many columns at once: the costly parts, drawing 1,000 sign patterns or bootstrap samples of 138,000 users,
are shared by all columns and the resampled statistics are one matrix product (`lmrec.compare.resampling`).
`scipy.stats.permutation_test` and `scipy.stats.bootstrap` take one statistic at a time and draw and evaluate
the resamples again for each metric, in numpy batches rather than in BLAS: on the 2-core machine of the `compare`
benchmark, scipy's permutation test took 18 s for one column of 138,000 users and 1,000 permutations (about 55
minutes for a 180-column table), the sign flips here 2.4 s for all 180 columns.

The differences are B - A: a positive mean difference, t statistic, Cohen's d_z and relative change mean B is
higher. Two-sided tests throughout.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from lmrec.compare import resampling
from lmrec.compare.columns import Columns, as_matrix, column_moments, ratio

#: The tests `paired_tests` can run; the ones not asked for are NaN in the result.
TESTS = ("t", "wilcoxon", "permutation")
#: scipy's ways of treating zero differences in the Wilcoxon test (see `paired_tests`).
ZERO_METHODS = ("wilcox", "pratt", "zsplit")


@dataclass(frozen=True, eq=False)
class PairedTests(Columns):
    """One paired comparison per column; every array has one entry per column. `settings` records how the
    p-values and intervals were made (tests, permutations, resamples, confidence, seed, zero_method)."""

    n: np.ndarray  #: int, users defined on both sides
    mean_a: np.ndarray
    mean_b: np.ndarray
    mean_diff: np.ndarray  #: mean of B - A over the same users
    diff_low: np.ndarray  #: t-interval of the mean difference
    diff_high: np.ndarray
    t_statistic: np.ndarray
    t_pvalue: np.ndarray
    wilcoxon_statistic: np.ndarray
    wilcoxon_pvalue: np.ndarray
    permutation_pvalue: np.ndarray
    relative_change: np.ndarray  #: mean B / mean A - 1
    relative_low: np.ndarray  #: percentile bootstrap interval of the relative change
    relative_high: np.ndarray
    cohens_dz: np.ndarray  #: mean diff / std of the diffs (ddof=1); NaN if all diffs are one nonzero value
    wins: np.ndarray  #: int, users on which B is better (see `higher_is_better`)
    ties: np.ndarray  #: int, users with exactly equal values
    losses: np.ndarray  #: int, users on which B is worse
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class MeanIntervals(Columns):
    """A single run's mean per column, with its t-interval and its percentile bootstrap interval over users."""

    n: np.ndarray  #: int, users with the metric defined
    mean: np.ndarray
    std: np.ndarray  #: standard deviation over users (ddof=1)
    t_low: np.ndarray
    t_high: np.ndarray
    bootstrap_low: np.ndarray
    bootstrap_high: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)


def paired_t(diffs0: np.ndarray, defined: np.ndarray, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """The paired t-test of each column of differences (undefined entries as 0, `defined` the mask): n, mean,
    std, t, p and the t-interval of the mean (`low`, `high`), equal to `scipy.stats.ttest_rel` wherever scipy gives
    a number. Where every difference is exactly 0 scipy gives NaN (0/0); here t = 0 and p = 1: identical values are
    the clearest case of "no evidence of a difference", and a NaN would leave the comparison out of the correction
    family as if it had never been made. Fewer than 2 users: NaN (no variance to test against)."""
    out = column_moments(diffs0, defined, confidence)
    identical = (out["n"] >= 2) & (out["std"] == 0) & (out["mean"] == 0)
    out["t"][identical], out["p"][identical] = 0.0, 1.0
    return out


def _wilcoxon(diffs: np.ndarray, defined: np.ndarray, zero_method: str) -> tuple[np.ndarray, np.ndarray]:
    """scipy's Wilcoxon signed-rank test on each column's defined differences (statistic and two-sided p; NaN
    for a column with no user; p = 1 where every difference is 0, which scipy gives for up to 50 users and NaN
    beyond, as in `paired_t`). scipy itself, one column at a time, rather than a rewrite: its result is the
    contract, its per-column cost (a sort) is small beside the resampling, and a loop over the columns measured
    faster than its own vectorised call over the matrix (2.5 s against 5.9 s for 180 columns of 138,000 users)."""
    statistic = np.full(diffs.shape[1], np.nan)
    pvalue = np.full(diffs.shape[1], np.nan)
    for j in range(diffs.shape[1]):
        column = diffs[defined[:, j], j]
        if column.size == 0:
            continue
        with warnings.catch_warnings():  # all-zero columns (p = 1) and small-sample method switches warn
            warnings.simplefilter("ignore")
            result = stats.wilcoxon(column, zero_method=zero_method)
        statistic[j], pvalue[j] = result.statistic, result.pvalue
        if np.isnan(pvalue[j]) and not column.any():  # scipy's normal approximation divides 0 by 0 here
            pvalue[j] = 1.0
    return statistic, pvalue


def paired_tests(
    a: ArrayLike,
    b: ArrayLike,
    tests: Sequence[str] = TESTS,
    *,
    permutations: int = 1000,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    zero_method: str = "wilcox",
    higher_is_better: bool | ArrayLike = True,
) -> PairedTests:
    """Compare B with A on the same users, column by column (`a`, `b`: users x columns, rows aligned on users).

    A user enters a column's comparison only where both values are defined. Per column: means, mean difference
    with its t-interval, the tests named in `tests` (others NaN), the relative change with a percentile bootstrap
    interval over users (`resamples` = 0: NaN), Cohen's d_z, wins / ties / losses.

    `t`: the paired t-test, = `scipy.stats.ttest_rel(b, a)` (all-zero differences: t = 0, p = 1, see `paired_t`).
    `wilcoxon`: = `scipy.stats.wilcoxon(b - a, zero_method=zero_method)`. The default "wilcox" drops users whose
    values are equal: it is scipy's default and the textbook test, so its p-values are the ones other tools and
    papers report; on recommender metrics, where many users score the same under both models (both miss the
    item), it asks "where the models differ, does B win more and by larger margins", and how many users are tied is
    reported beside it (`ties`). "pratt" ranks the tied users with the others before leaving them out of the sums
    (it differs from "wilcox" most when ties are most of the users), "zsplit" splits their ranks between the signs.
    `permutation`: the paired randomisation test: each user's difference keeps or flips its sign at random,
    `permutations` times (seeded), and p = (1 + #{|flipped mean| >= |observed mean|}) / (1 + permutations), so
    p is never 0 and a model compared with itself gets p = 1.

    `higher_is_better` (one flag, or one per column) only decides which side of an unequal pair is a win."""
    a, b = as_matrix(a, "a"), as_matrix(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (users aligned), got {a.shape} and {b.shape}")
    unknown = sorted(set(tests) - set(TESTS))
    if unknown or zero_method not in ZERO_METHODS:
        raise ValueError(f"tests must be among {TESTS} and zero_method one of {ZERO_METHODS}")
    if ("permutation" in tests and permutations < 1) or resamples < 0 or not 0 < confidence < 1:
        raise ValueError("permutations must be >= 1, resamples >= 0 and 0 < confidence < 1")
    defined = ~(np.isnan(a) | np.isnan(b))
    diffs0 = b - a
    diffs0[~defined] = 0.0
    a0 = np.where(defined, a, 0.0)
    k = a.shape[1]
    t = paired_t(diffs0, defined, confidence)
    n = t["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_a = a0.sum(axis=0) / n
        mean_b = np.where(defined, b, 0.0).sum(axis=0) / n
        cohens_dz = ratio(t["mean"], t["std"])
    cohens_dz[n < 2] = np.nan
    nan = np.full(k, np.nan)
    wilcoxon = _wilcoxon(diffs0, defined, zero_method) if "wilcoxon" in tests else (nan, nan)
    permutation = nan
    if "permutation" in tests:
        count = resampling.sign_flip_exceedances(diffs0, permutations, seed)
        permutation = np.where(n > 0, (1.0 + count) / (1.0 + permutations), np.nan)
    relative_low = relative_high = nan
    if resamples:
        sums = resampling.bootstrap_sums([a0, diffs0], resamples, seed)
        relative_low, relative_high = resampling.percentile_interval(ratio(sums[:, k:], sums[:, :k]), confidence)
        relative_low[n == 0], relative_high[n == 0] = np.nan, np.nan
    higher = np.broadcast_to(np.asarray(higher_is_better, dtype=bool), (k,))
    better = np.where(higher, b > a, b < a) & defined
    worse = np.where(higher, b < a, b > a) & defined
    return PairedTests(
        n=n,
        mean_a=mean_a,
        mean_b=mean_b,
        mean_diff=t["mean"],
        diff_low=t["low"],
        diff_high=t["high"],
        t_statistic=t["t"] if "t" in tests else nan,
        t_pvalue=t["p"] if "t" in tests else nan,
        wilcoxon_statistic=wilcoxon[0],
        wilcoxon_pvalue=wilcoxon[1],
        permutation_pvalue=permutation,
        relative_change=ratio(t["mean"], mean_a),
        relative_low=relative_low,
        relative_high=relative_high,
        cohens_dz=cohens_dz,
        wins=better.sum(axis=0),
        ties=((a == b) & defined).sum(axis=0),
        losses=worse.sum(axis=0),
        settings={
            "tests": list(tests),
            "permutations": permutations,
            "resamples": resamples,
            "confidence": confidence,
            "seed": seed,
            "zero_method": zero_method,
        },
    )


def against_baseline(baseline: ArrayLike, runs: Sequence[ArrayLike], **options: Any) -> list[PairedTests]:
    """Each run (users x metrics, aligned with the baseline) against the baseline: `paired_tests` in one call on
    the runs side by side, so the signs and bootstrap samples are drawn once for all of them. Each result equals
    `paired_tests(baseline, run, **options)` (same seed: same signs, same samples) up to floating-point rounding
    in the matrix products."""
    base = as_matrix(baseline, "baseline")
    if not runs:
        return []
    stacked = paired_tests(np.tile(base, (1, len(runs))), np.hstack([as_matrix(r, "run") for r in runs]), **options)
    k = base.shape[1]
    return [stacked.columns(slice(i * k, (i + 1) * k)) for i in range(len(runs))]


def mean_intervals(
    values: ArrayLike, *, confidence: float = 0.95, resamples: int = 1000, seed: int = 0
) -> MeanIntervals:
    """Each column's mean over its defined users, with the t-interval (`scipy.stats.t`) and the percentile
    bootstrap interval over users (`resamples` samples, seeded: the same seed gives the identical interval).

    Several runs at once: stack them side by side (`np.hstack`) when they share users; the samples are drawn
    once. A column with undefined users is bootstrapped as the ratio (sum of sampled values) / (number of sampled
    users that have it): users, not metric values, are what is resampled, so all columns see the same samples."""
    x = as_matrix(values)
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError("resamples must be >= 1 and 0 < confidence < 1")
    defined = ~np.isnan(x)
    x0 = np.where(defined, x, 0.0)
    moments = column_moments(x0, defined, confidence)
    k = x.shape[1]
    partial = np.flatnonzero(~defined.all(axis=0))
    sums = resampling.bootstrap_sums([x0, defined[:, partial]], resamples, seed)
    counts = np.full((resamples, k), float(x.shape[0]))  # every sample draws n users
    counts[:, partial] = sums[:, k:]
    means = np.full((resamples, k), np.nan)
    np.divide(sums[:, :k], counts, out=means, where=counts > 0)
    low, high = resampling.percentile_interval(means, confidence)
    return MeanIntervals(
        n=moments["n"],
        mean=moments["mean"],
        std=moments["std"],
        t_low=moments["low"],
        t_high=moments["high"],
        bootstrap_low=low,
        bootstrap_high=high,
        settings={"resamples": resamples, "confidence": confidence, "seed": seed},
    )
