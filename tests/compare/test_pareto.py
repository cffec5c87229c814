"""The cost/accuracy front on a hand-made case: dominated points, ties, duplicates, NaN, lower-is-better."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.compare.pareto import pareto_front


def test_front_on_a_hand_made_case():
    #        0     1     2     3     4     5     6     7     8       9
    cost = [1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0, 0.5, np.nan]
    acc = [0.20, 0.30, 0.25, 0.30, 0.40, 0.40, 0.50, 0.50, 0.10, 0.99]
    # 2: same cost as 1, less accurate; 3: as accurate as 1, dearer; 5: as accurate as 4, dearer;
    # 6 and 7: identical, both on it; 8: cheapest of all; 9: unmeasured cost, never on it and hides nothing
    expected = [True, True, False, False, True, False, True, True, True, False]
    assert pareto_front(cost, acc).tolist() == expected


def test_order_does_not_matter():
    rng = np.random.default_rng(0)
    cost, acc = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 40).astype(float)
    front = pareto_front(cost, acc)
    points = list(zip(cost, acc, strict=True))
    brute = [not any(c2 <= c and a2 >= a and (c2 < c or a2 > a) for c2, a2 in points) for c, a in points]
    assert front.tolist() == brute
    order = rng.permutation(40)
    assert pareto_front(cost[order], acc[order]).tolist() == front[order].tolist()


def test_lower_is_better_accuracy():
    assert pareto_front([1, 2, 3], [0.5, 0.3, 0.4], higher_is_better=False).tolist() == [True, True, False]
    assert pareto_front([], []).tolist() == []
    with pytest.raises(ValueError):
        pareto_front([1, 2], [1])
