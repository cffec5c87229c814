"""Paired tests and intervals against scipy on fixed vectors, against exact enumeration, and on the edge cases a
comparison table meets: a model against itself, undefined metrics, stacked runs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from lmrec.compare.multiple import adjust_pvalues
from lmrec.compare.statistics import against_baseline, mean_intervals, paired_tests

#: Fixed per-user values with ties, zeros and repeated magnitudes (what NDCG-like metrics look like).
A = np.array([0.0, 0.5, 0.3, 1.0, 0.0, 0.25, 0.7, 0.0, 0.4, 0.9, 0.1, 0.6, 0.33, 0.0, 0.8, 0.5, 0.2, 0.45, 0.0, 0.3])
B = np.array([0.1, 0.5, 0.5, 1.0, 0.2, 0.5, 0.6, 0.0, 0.6, 1.0, 0.0, 0.7, 0.5, 0.3, 0.8, 0.4, 0.4, 0.45, 0.1, 0.5])


def larger_pair(n: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = np.round(rng.beta(0.6, 2.0, (n, 3)), 2)
    b = np.clip(np.round(a + rng.normal(0.02, 0.08, (n, 3)), 2), 0, 1)
    return a, b


def test_t_test_equals_scipy_ttest_rel():
    a, b = larger_pair()
    result = paired_tests(np.column_stack([A, A[::-1]]), np.column_stack([B, B]), tests=("t",), resamples=0)
    for j, (x, y) in enumerate([(A, B), (A[::-1], B)]):
        expected = stats.ttest_rel(y, x)
        np.testing.assert_allclose(result.t_statistic[j], expected.statistic, rtol=1e-12)
        np.testing.assert_allclose(result.t_pvalue[j], expected.pvalue, rtol=1e-10)
        low, high = expected.confidence_interval(0.95)
        np.testing.assert_allclose([result.diff_low[j], result.diff_high[j]], [low, high], rtol=1e-12)
    result = paired_tests(a, b, tests=("t",), resamples=0)
    np.testing.assert_allclose(result.t_pvalue, stats.ttest_rel(b, a).pvalue, rtol=1e-10)
    assert np.isnan(result.wilcoxon_pvalue).all() and np.isnan(result.permutation_pvalue).all()


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
def test_wilcoxon_equals_scipy(zero_method):
    a, b = larger_pair()
    small = paired_tests(A, B, tests=("wilcoxon",), resamples=0, zero_method=zero_method)  # <= 50: scipy's auto
    expected = stats.wilcoxon(B - A, zero_method=zero_method)
    assert small.wilcoxon_statistic[0] == expected.statistic and small.wilcoxon_pvalue[0] == expected.pvalue
    large = paired_tests(a, b, tests=("wilcoxon",), resamples=0, zero_method=zero_method)
    for j in range(3):
        expected = stats.wilcoxon(b[:, j] - a[:, j], zero_method=zero_method)
        assert large.wilcoxon_statistic[j] == expected.statistic and large.wilcoxon_pvalue[j] == expected.pvalue


def exact_sign_flip_pvalue(d: np.ndarray) -> float:
    """All 2^n sign patterns, the observed one included."""
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=len(d))))
    return float(np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12))


def test_sign_flips_agree_with_exact_enumeration():
    d = np.array([0.3, -0.1, 0.25, 0.4, -0.2, 0.05, 0.15, -0.05, 0.35, 0.1, 0.0, -0.3])
    exact = exact_sign_flip_pvalue(d)  # 4096 patterns
    permutations = 40_000
    result = paired_tests(np.zeros_like(d), d, tests=("permutation",), permutations=permutations, resamples=0)
    error = np.sqrt(exact * (1 - exact) / permutations)
    assert 0.05 < exact < 0.5 and abs(result.permutation_pvalue[0] - exact) < 4 * error


def test_sign_flips_agree_with_scipy_permutation_test():
    rng = np.random.default_rng(7)
    d = np.round(rng.normal(0.15, 0.5, 60), 2)
    reference = stats.permutation_test(
        (d,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        n_resamples=20_000,
        vectorized=True,
        rng=1,
    ).pvalue
    ours = paired_tests(np.zeros_like(d), d, tests=("permutation",), permutations=20_000, resamples=0)
    error = np.sqrt(2 * reference * (1 - reference) / 20_000)  # two independent Monte-Carlo estimates
    assert 0.05 < reference < 0.5 and abs(ours.permutation_pvalue[0] - reference) < 4 * error


def test_a_clear_difference_gets_the_smallest_possible_permutation_p():
    a, b = larger_pair()
    result = paired_tests(a, b + 0.2, tests=("permutation",), permutations=999, resamples=0)
    np.testing.assert_array_equal(result.permutation_pvalue, 1 / 1000)


def test_a_model_against_itself_gives_p_1_and_zero_effect():
    a, _ = larger_pair()
    a[:5, 1] = np.nan
    result = paired_tests(a, a.copy())
    for name in ("t_pvalue", "wilcoxon_pvalue", "permutation_pvalue"):
        np.testing.assert_array_equal(getattr(result, name), 1.0)
    for name in ("mean_diff", "t_statistic", "cohens_dz", "relative_change", "relative_low", "relative_high"):
        np.testing.assert_array_equal(getattr(result, name), 0.0)
    np.testing.assert_array_equal(result.ties, result.n)
    for name in ("t_pvalue", "wilcoxon_pvalue", "permutation_pvalue"):
        assert not adjust_pvalues(getattr(result, name), method="bh").reject.any()
    assert result.wins.sum() == result.losses.sum() == 0 and result.n.tolist() == [400, 395, 400]


def test_undefined_users_are_left_out_per_column():
    a, b = larger_pair()
    a[::7, 0] = np.nan
    b[::5, 0] = np.nan
    a[:, 2] = np.nan  # defined for nobody
    result = paired_tests(a, b, permutations=200, resamples=200)
    keep = ~(np.isnan(a[:, 0]) | np.isnan(b[:, 0]))
    alone = paired_tests(a[keep, :1], b[keep, :1], permutations=200, resamples=200)
    assert result.n[0] == keep.sum() == alone.n[0]
    for name in ("mean_a", "mean_b", "t_pvalue", "wilcoxon_pvalue", "cohens_dz", "relative_change"):
        np.testing.assert_allclose(getattr(result, name)[0], getattr(alone, name)[0], rtol=1e-12)
    # an undefined user's difference is 0, which flips to itself: exactly the test of a user with equal values
    tied = np.where(keep, b[:, 0], 0.0), np.where(keep, a[:, 0], 0.0)
    same = paired_tests(tied[1], tied[0], tests=("permutation",), permutations=200, resamples=0)
    assert result.permutation_pvalue[0] == same.permutation_pvalue[0]
    row = result.row(2)
    assert row["n"] == 0 and row["wins"] == 0
    assert all(np.isnan(v) for k, v in row.items() if k not in ("n", "wins", "ties", "losses"))


def test_effect_sizes_and_win_tie_loss_counts():
    result = paired_tests(
        np.column_stack([A, A]), np.column_stack([B, B]), resamples=500, higher_is_better=[True, False]
    )
    d = B - A
    assert result.mean_a[0] == pytest.approx(A.mean()) and result.mean_b[0] == pytest.approx(B.mean())
    assert result.relative_change[0] == pytest.approx(B.mean() / A.mean() - 1)
    assert result.cohens_dz[0] == pytest.approx(d.mean() / d.std(ddof=1))
    assert (result.wins[0], result.ties[0], result.losses[0]) == ((d > 0).sum(), (d == 0).sum(), (d < 0).sum())
    assert (result.wins[1], result.losses[1]) == (result.losses[0], result.wins[0])  # lower is better
    assert result.relative_low[0] < result.relative_change[0] < result.relative_high[0]


def test_a_column_gets_the_same_result_alone_and_beside_others():
    a, b = larger_pair()
    together = against_baseline(a, [b, b[::-1], a + 0.01], permutations=300, resamples=300)
    for run, result in zip([b, b[::-1], a + 0.01], together, strict=True):
        alone = paired_tests(a, run, permutations=300, resamples=300)
        for name in ("permutation_pvalue", "wilcoxon_pvalue", "wins"):
            np.testing.assert_array_equal(getattr(result, name), getattr(alone, name))
        for name in ("t_pvalue", "relative_low", "relative_high", "mean_b"):
            np.testing.assert_allclose(getattr(result, name), getattr(alone, name), rtol=1e-12)


def test_mean_intervals_t_equals_scipy_and_the_bootstrap_is_reproducible():
    a, b = larger_pair()
    a[:40, 1] = np.nan
    first = mean_intervals(np.hstack([a, b]), resamples=400, seed=5)
    again = mean_intervals(np.hstack([a, b]), resamples=400, seed=5)
    other = mean_intervals(np.hstack([a, b]), resamples=400, seed=6)
    np.testing.assert_array_equal(first.bootstrap_low, again.bootstrap_low)
    np.testing.assert_array_equal(first.bootstrap_high, again.bootstrap_high)
    assert not np.array_equal(first.bootstrap_low, other.bootstrap_low)
    column = a[40:, 1]
    low, high = stats.t.interval(0.95, len(column) - 1, loc=column.mean(), scale=stats.sem(column))
    np.testing.assert_allclose([first.t_low[1], first.t_high[1]], [low, high], rtol=1e-12)
    assert first.n[1] == 360 and first.mean[1] == pytest.approx(column.mean())
    # for 400 users the bootstrap and the t-interval are close, and both hold the mean
    width_t, width_boot = first.t_high - first.t_low, first.bootstrap_high - first.bootstrap_low
    np.testing.assert_allclose(width_boot, width_t, rtol=0.2)
    assert ((first.bootstrap_low < first.mean) & (first.mean < first.bootstrap_high)).all()


def test_mean_intervals_of_a_column_defined_for_nobody_are_nan():
    x = np.column_stack([np.arange(10.0), np.full(10, np.nan)])
    result = mean_intervals(x, resamples=50)
    assert result.row(1)["n"] == 0 and np.isnan([result.mean[1], result.t_low[1], result.bootstrap_high[1]]).all()
    assert result.n[0] == 10 and np.isfinite(result.bootstrap_low[0])


def test_no_users_at_all_gives_nan_not_an_error():
    result = paired_tests(np.empty((0, 2)), np.empty((0, 2)))
    assert result.n.tolist() == [0, 0] and np.isnan(result.permutation_pvalue).all()
    assert np.isnan(result.relative_low).all() and np.isnan(mean_intervals(np.empty((0, 2))).bootstrap_low).all()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        paired_tests(np.zeros((5, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="inf"):
        paired_tests(np.zeros(5), np.array([0, 1, np.inf, 0, 0]))
    with pytest.raises(ValueError, match="tests"):
        paired_tests(np.zeros(5), np.ones(5), tests=("anova",))
