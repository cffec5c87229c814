"""The resampling engines: sign flips that do not depend on chunking, bootstrap weights that are multinomial."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lmrec.compare import resampling


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks and blocks small enough that a few hundred users and replicates cross several of each."""
    monkeypatch.setattr(resampling, "USER_CHUNK", 7)
    monkeypatch.setattr(resampling, "REPLICATE_BLOCK", 64)


def test_sign_flips_do_not_depend_on_the_user_chunk(monkeypatch: pytest.MonkeyPatch):
    diffs = np.random.default_rng(0).normal(0.05, 1.0, (100, 4))
    whole = resampling.sign_flip_exceedances(diffs, 500, seed=3)
    monkeypatch.setattr(resampling, "USER_CHUNK", 9)
    np.testing.assert_array_equal(resampling.sign_flip_exceedances(diffs, 500, seed=3), whole)
    assert not np.array_equal(resampling.sign_flip_exceedances(diffs, 500, seed=4), whole)


def test_flips_as_extreme_as_observed_count_despite_rounding():
    """Tenths do not add up exactly in binary, and BLAS adds them in another order than `sum`: the flips whose
    |sum| equals the observed one (counted exactly on the integers 10 x d) must still count."""
    tenths = np.array([10, 6, 5, 8, 7, 2])
    signs = np.array(list(itertools.product([-1, 1], repeat=len(tenths))))
    exact = np.mean(np.abs(signs @ tenths) >= tenths.sum())  # 2 of 64
    count = resampling.sign_flip_exceedances(tenths[:, None] / 10, 20_000, seed=0)[0]
    assert abs(count / 20_000 - exact) < 4 * np.sqrt(exact * (1 - exact) / 20_000)


def test_bootstrap_weights_are_multinomial(small_chunks):
    n, resamples = 30, 4000
    weights = resampling.bootstrap_sums(np.eye(n), resamples, seed=2)  # column i: how often user i was drawn
    np.testing.assert_array_equal(weights.sum(axis=1), n)  # every sample draws exactly n users
    assert (weights >= 0).all() and np.array_equal(weights, np.round(weights))
    # multinomial(n, 1/n): mean 1, variance 1 - 1/n, covariance -1/n between two users
    np.testing.assert_allclose(weights.mean(axis=0).mean(), 1.0, atol=0.01)
    np.testing.assert_allclose(weights.var(axis=0).mean(), 1 - 1 / n, rtol=0.05)
    covariance = np.cov(weights, rowvar=False)
    np.testing.assert_allclose(covariance[~np.eye(n, dtype=bool)].mean(), -1 / n, atol=0.005)
    # each user's marginal is binomial(n, 1/n), whichever chunk it is in
    zero_share = (weights == 0).mean(axis=0)
    np.testing.assert_allclose(zero_share, (1 - 1 / n) ** n, atol=0.04)


def test_bootstrap_sums_are_reproducible_and_independent_of_the_columns():
    values = np.random.default_rng(4).random((3000, 5))
    first = resampling.bootstrap_sums(values, 300, seed=9)
    np.testing.assert_array_equal(first, resampling.bootstrap_sums(values, 300, seed=9))
    np.testing.assert_allclose(resampling.bootstrap_sums(values[:, 2:3], 300, seed=9)[:, 0], first[:, 2], rtol=1e-12)
    assert not np.array_equal(first, resampling.bootstrap_sums(values, 300, seed=10))
    parts = resampling.bootstrap_sums([values[:, :2], values[:, 2:] > 0.5], 300, seed=9)
    np.testing.assert_allclose(parts[:, :2], first[:, :2], rtol=1e-12)
    np.testing.assert_allclose(parts[:, 2:], resampling.bootstrap_sums(1.0 * (values[:, 2:] > 0.5), 300, seed=9))


def test_percentile_interval_skips_nan_replicates():
    replicates = np.column_stack([np.arange(101.0), np.full(101, np.nan)])
    replicates[0, 0] = np.nan
    low, high = resampling.percentile_interval(replicates, 0.9)
    np.testing.assert_allclose([low[0], high[0]], np.quantile(np.arange(1.0, 101.0), [0.05, 0.95]))
    assert np.isnan([low[1], high[1]]).all()
