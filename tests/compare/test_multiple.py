"""Holm, Bonferroni and Benjamini-Hochberg equal statsmodels; tests that could not be made stay out of the family."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from lmrec.compare.multiple import adjust_pvalues

P = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.5, 1.0, 0.0125, 0.0126])


@pytest.mark.parametrize(
    ("method", "statsmodels_method"), [("holm", "holm"), ("bonferroni", "bonferroni"), ("bh", "fdr_bh")]
)
def test_corrections_equal_statsmodels(method, statsmodels_method):
    reject, adjusted, _, _ = multipletests(P, alpha=0.05, method=statsmodels_method)
    result = adjust_pvalues(P.reshape(3, 4), method=method)
    np.testing.assert_array_equal(result.adjusted, adjusted.reshape(3, 4))
    np.testing.assert_array_equal(result.reject, reject.reshape(3, 4))
    assert result.family == 12 and result.method == statsmodels_method


def test_holm_is_the_default_and_nan_stays_out_of_the_family():
    with_nan = np.array([0.01, np.nan, 0.02, 0.03, np.nan])
    result = adjust_pvalues(with_nan)
    reject, adjusted, _, _ = multipletests([0.01, 0.02, 0.03], method="holm")
    np.testing.assert_array_equal(result.adjusted[[0, 2, 3]], adjusted)
    np.testing.assert_array_equal(result.reject[[0, 2, 3]], reject)
    assert np.isnan(result.adjusted[[1, 4]]).all() and not result.reject[[1, 4]].any() and result.family == 3
    nothing = adjust_pvalues([np.nan, np.nan], method="bh")
    assert nothing.family == 0 and np.isnan(nothing.adjusted).all() and not nothing.reject.any()


def test_p_equal_to_one_is_never_rejected():
    result = adjust_pvalues(np.ones(20), method="bh")
    assert not result.reject.any() and (result.adjusted == 1).all()


def test_bad_method_or_p_values_are_refused():
    with pytest.raises(ValueError, match="method"):
        adjust_pvalues([0.1], method="sidak-ish")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([0.1, 1.2])
