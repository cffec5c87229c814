"""Seed-level comparison: per-seed tests are the pair's own, the seed-level t equals scipy's, 2 seeds are enough
for a test and 1 seed gives NaN."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lmrec.compare.multiple import adjust_pvalues
from lmrec.compare.seeds import compare_seeds, summarize_seeds
from lmrec.compare.statistics import paired_tests


def seed_pairs(seeds: int, users: int = 300) -> list[tuple[np.ndarray, np.ndarray]]:
    pairs = []
    for s in range(seeds):
        rng = np.random.default_rng(s)
        a = rng.beta(0.6, 2.0, (users + 10 * s, 2))
        pairs.append((a, np.clip(a + rng.normal(0.01 * (s + 1), 0.1, a.shape), 0, 1)))
    return pairs


def test_per_seed_and_seed_level_tests():
    pairs = seed_pairs(4)
    result = compare_seeds(pairs, permutations=200, resamples=100)
    for (a, b), per_seed in zip(pairs, result.per_seed, strict=True):
        alone = paired_tests(a, b, permutations=200, resamples=100)
        np.testing.assert_array_equal(per_seed.permutation_pvalue, alone.permutation_pvalue)
        np.testing.assert_array_equal(per_seed.t_pvalue, alone.t_pvalue)
    means_a = np.array([a.mean(axis=0) for a, _ in pairs])
    means_b = np.array([b.mean(axis=0) for _, b in pairs])
    expected = stats.ttest_rel(means_b, means_a)
    np.testing.assert_allclose(result.t_statistic, expected.statistic, rtol=1e-9)
    np.testing.assert_allclose(result.t_pvalue, expected.pvalue, rtol=1e-9)
    np.testing.assert_allclose(result.b.mean, means_b.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(result.b.std, means_b.std(axis=0, ddof=1), rtol=1e-9)
    low, high = stats.t.interval(0.95, 3, loc=means_b.mean(axis=0), scale=stats.sem(means_b, axis=0))
    np.testing.assert_allclose([result.b.t_low, result.b.t_high], [low, high], rtol=1e-9)
    assert result.diff.n.tolist() == [4, 4]


def test_two_seeds_are_enough_one_is_not():
    two = compare_seeds(seed_pairs(2), tests=("t",), resamples=0)
    assert np.isfinite(two.t_pvalue).all() and np.isfinite(two.diff.t_low).all()
    one = compare_seeds(seed_pairs(1), tests=("t",), resamples=0)
    assert np.isnan(one.t_pvalue).all() and np.isnan(one.a.std).all() and np.isnan(one.a.t_high).all()
    assert np.isfinite(one.per_seed[0].t_pvalue).all() and one.a.n.tolist() == [1, 1]
    assert adjust_pvalues(np.concatenate([one.t_pvalue, two.t_pvalue])).family == 2  # the NaN stay out


def test_a_model_against_itself_over_seeds():
    pairs = [(a, a.copy()) for a, _ in seed_pairs(3)]
    result = compare_seeds(pairs, permutations=100, resamples=50)
    assert (result.t_pvalue == 1).all() and (result.t_statistic == 0).all() and (result.diff.mean == 0).all()
    assert not adjust_pvalues(result.t_pvalue).reject.any()


def test_one_measurement_repeated_over_seeds_has_no_seed_level_test():
    """Deterministic models give the same difference on every seed: scipy's t is infinite and p 0, which would
    mark a difference significant on no evidence; lmrec leaves the test undefined (and out of the correction)."""
    a, b = seed_pairs(1)[0]
    result = compare_seeds([(a, b)] * 3, tests=("t",), resamples=0)
    assert np.isinf(stats.ttest_rel(result.b.mean + np.zeros((3, 2)), result.a.mean + np.zeros((3, 2))).statistic).all()
    assert np.isnan(result.t_pvalue).all() and np.isnan(result.t_statistic).all()
    assert np.isfinite(result.per_seed[0].t_pvalue).all()  # each seed's own test over users still stands


def test_summarize_seeds_and_refusals():
    summary = summarize_seeds([[0.30, np.nan], [0.32, 0.5], [0.31, 0.7]])
    assert summary.n.tolist() == [3, 2] and summary.mean[0] == pytest.approx(0.31)
    assert summary.row(1)["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    with pytest.raises(ValueError):
        compare_seeds([])
    with pytest.raises(ValueError, match="same columns"):
        compare_seeds([(np.zeros((5, 2)), np.ones((5, 2))), (np.zeros((5, 3)), np.ones((5, 3)))], resamples=0)
