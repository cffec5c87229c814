"""Splits in RecBole's vocabulary: ratio, temporal, leave-one-out, cold-start and shipped splits, each against a
reference computed another way (a Python loop over rows)."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.data.options import SplitOptions, check_data_options
from lmrec.data.splits import (
    TEST,
    TRAIN,
    VAL,
    choose_cold,
    cold_split,
    make_split,
    random_leave_one_out,
    random_ratio_split,
    source_split,
    temporal_cut_split,
    temporal_leave_one_out,
    truncate_history,
    user_random_split,
)
from lmrec.errors import ConfigError, DataError


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


def test_a_random_split_holds_only_split_codes():
    assert set(make_split("random", np.zeros(10, dtype=int), np.zeros(10), [8, 1, 1], 0)) <= {TRAIN, VAL, TEST}


def test_user_random_split_cuts_each_user_by_the_ratios():
    rng = np.random.default_rng(1)
    users = rng.integers(0, 25, size=600)
    codes = user_random_split(users, [8, 1, 1], seed=5)
    for user in np.unique(users):
        n = int((users == user).sum())
        mine = codes[users == user]
        n_train, n_val = round(0.8 * n), round(0.1 * n)
        assert (int((mine == TRAIN).sum()), int((mine == VAL).sum())) == (n_train, n_val)
        assert int((mine == TEST).sum()) == n - n_train - n_val
    assert np.array_equal(codes, user_random_split(users, [8, 1, 1], seed=5))
    assert not np.array_equal(codes, user_random_split(users, [8, 1, 1], seed=6))
    assert user_random_split(np.array([3]), [8, 1, 1], seed=0).tolist() == [TRAIN]  # a lone row stays in train


def test_temporal_cut_never_separates_equal_timestamps():
    timestamps = np.array([5, 1, 2, 2, 3, 3, 3, 4, 9, 9])
    codes = temporal_cut_split(timestamps, [5, 3, 2])
    # sorted: 1 2 2 3 3 3 4 5 9 9; row 5 (0-based) of the sorted times is a 3, so validation starts at 3 and all
    # three 3s go to it (train gets 3 rows, not 5); row 8 is a 9, so test starts at 9
    assert codes.tolist() == [TEST if t >= 9 else VAL if t >= 3 else TRAIN for t in timestamps]
    assert temporal_cut_split(timestamps, [8, 1, 1], cut=[3, 9]).tolist() == codes.tolist()
    assert temporal_cut_split(timestamps, [8, 1, 1], cut=[4, 5]).tolist() == [
        TEST if t >= 5 else VAL if t >= 4 else TRAIN for t in timestamps
    ]


def test_random_leave_one_out_is_seeded_and_holds_out_one_row_per_user():
    users = np.repeat(np.arange(20), 7)
    codes = random_leave_one_out(users, seed=2)
    assert np.array_equal(codes, random_leave_one_out(users, seed=2))
    assert not np.array_equal(codes, random_leave_one_out(users, seed=3))
    for code in (VAL, TEST):
        assert np.bincount(users[codes == code]).tolist() == [1] * 20


def test_cold_items_leave_training_and_each_is_in_one_held_out_split():
    rng = np.random.default_rng(3)
    items = rng.integers(0, 50, size=2000)
    codes = make_split(
        "cold_items", np.zeros(2000, dtype=int), np.zeros(2000), [8, 1, 1], 4, items=items, cold_share=0.2
    )
    cold = choose_cold(items, 0.2, [8, 1, 1], 4)
    assert (len(cold[VAL]), len(cold[TEST])) == (5, 5)  # 20 % of 50 items, val:test = 1:1
    for code, ids in cold.items():
        assert set(codes[np.isin(items, ids)].tolist()) == {code}
    warm = ~np.isin(items, np.concatenate([cold[VAL], cold[TEST]]))
    assert np.array_equal(codes[warm], random_ratio_split(2000, [8, 1, 1], 4)[warm])  # warm rows: the random split


def test_cold_users_keep_their_earliest_rows_as_a_profile():
    users = np.repeat(np.arange(10), 6)
    timestamps = np.tile([60, 10, 50, 20, 40, 30], 10)
    codes = cold_split(users, timestamps, [8, 1, 1], seed=0, cold_share=0.4, profile=2)
    cold = np.concatenate(list(choose_cold(users, 0.4, [8, 1, 1], 0).values()))
    assert len(cold) == 4
    for user in cold:
        mine = codes[users == user]
        assert mine[[1, 3]].tolist() == [TRAIN, TRAIN]  # timestamps 10 and 20: the two earliest
        assert set(mine[[0, 2, 4, 5]].tolist()) in ({VAL}, {TEST})


def test_source_split_reads_the_shipped_labels_and_rejects_others():
    assert source_split(np.array(["train", "Valid", "test", "dev"])).tolist() == [TRAIN, VAL, TEST, VAL]
    with pytest.raises(DataError, match=r"'holdout' in row 1 \(1 rows\)"):
        source_split(np.array(["train", "holdout"]))
    with pytest.raises(DataError, match="provides no `split` column"):
        make_split("source", np.zeros(3, dtype=int), np.zeros(3), [8, 1, 1], 0)


def test_truncate_history_keeps_the_last_training_rows_by_time():
    rng = np.random.default_rng(4)
    users = rng.integers(0, 8, size=300)
    timestamps = rng.integers(0, 30, size=300)  # ties: file order breaks them
    codes = rng.choice([TRAIN, TRAIN, TRAIN, VAL, TEST], size=300).astype(np.int8)
    keep = truncate_history(users, timestamps, codes, max_history=5)
    for user in range(8):
        train = [i for i in range(300) if users[i] == user and codes[i] == TRAIN]
        last = sorted(train, key=lambda i: (timestamps[i], i))[-5:]
        assert [i for i in range(300) if users[i] == user and keep[i] and codes[i] == TRAIN] == sorted(last)
    assert keep[codes != TRAIN].all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strategy": "random", "cut": [1, 2]}, "data.split.cut"),
        ({"strategy": "temporal", "cut": [5, 2]}, "data.split.cut"),
        ({"strategy": "cold_items", "ratios": [1, 0, 0]}, "needs a validation or test share"),
        ({"strategy": "random", "cold_profile": 2}, "data.split.cold_profile=2"),
    ],
)
def test_split_options_that_contradict_each_other_raise(options, message):
    """Each option's own kind is checked with the config (tests/config/test_validate.py); these relate two."""
    with pytest.raises(ConfigError, match=message):
        check_data_options(SplitOptions(**{"ratios": [8, 1, 1], **options}))
