"""Splits in RecBole's vocabulary: seeded ratio splits and per-user temporal leave-one-out."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.data.splits import (
    TEST,
    TRAIN,
    VAL,
    check_split_options,
    make_split,
    random_ratio_split,
    temporal_leave_one_out,
)


def test_random_split_has_ratio_sizes_and_is_seeded():
    codes = random_ratio_split(1000, [8, 1, 1], seed=3)
    assert np.bincount(codes).tolist() == [800, 100, 100]
    assert np.array_equal(codes, random_ratio_split(1000, [8, 1, 1], seed=3))
    assert not np.array_equal(codes, random_ratio_split(1000, [8, 1, 1], seed=4))


def test_temporal_leave_one_out_matches_brute_force():
    rng = np.random.default_rng(0)
    users = np.r_[rng.integers(0, 30, size=400), [40, 41, 41, 42, 42, 42]]  # users 40-42: 1, 2, 3 interactions
    timestamps = np.r_[rng.integers(0, 50, size=400), [5, 5, 6, 7, 8, 9]]  # many ties: file order must break them
    codes = temporal_leave_one_out(users, timestamps)
    for user in np.unique(users):
        rows = [i for i in range(len(users)) if users[i] == user]
        ordered = sorted(rows, key=lambda i: (timestamps[i], i))
        expected = {i: TRAIN for i in rows}
        if len(rows) >= 3:
            expected[ordered[-1]] = TEST
            expected[ordered[-2]] = VAL
        assert {i: int(codes[i]) for i in rows} == expected
    assert [int(c) for c in codes[-6:]] == [TRAIN, TRAIN, TRAIN, TRAIN, VAL, TEST]


def test_bad_split_options_raise():
    with pytest.raises(ValueError, match="data.split.ratios"):
        check_split_options("random", [8, 1])
    with pytest.raises(ValueError, match="data.split.strategy"):
        check_split_options("kfold", [8, 1, 1])
    assert set(make_split("random", np.zeros(10, dtype=int), np.zeros(10), [8, 1, 1], 0)) <= {TRAIN, VAL, TEST}
