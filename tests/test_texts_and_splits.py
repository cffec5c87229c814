from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmrec.data.splits import TEST, TRAIN, VAL, make_split, random_ratio_split, temporal_leave_one_out
from lmrec.data.texts import build_item_texts, top_tags


def test_item_text_skips_empty_segments_and_uses_top_tags():
    movies = pd.DataFrame(
        {
            "item_id": [1, 2],
            "title": ["Heat (1995)", "Odd, Film (2001)"],
            "genres": ["Action|Crime", "(no genres listed)"],
        }
    )
    tags = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "item_id": [1, 1, 1, 1],
            "tag": ["Heist", "heist", "LA", "pacino"],
            "timestamp": [0] * 4,
        }
    )
    texts = build_item_texts(movies, tags, ["{title}", "Genres: {genres}", "Tags: {tags}"], ". ", max_tags=2)
    assert texts == ["Heat (1995). Genres: Action, Crime. Tags: heist, la", "Odd, Film (2001)"]


def test_top_tags_orders_by_count_then_alphabetically():
    tags = pd.DataFrame({"item_id": [7] * 5, "tag": ["b", "a", "c", "c", "b"]})
    assert top_tags(tags, 3) == {7: "b, c, a"}


def test_unknown_template_field_is_rejected():
    movies = pd.DataFrame({"item_id": [1], "title": ["x"], "genres": ["Drama"]})
    with pytest.raises(ValueError, match="unknown field"):
        build_item_texts(movies, pd.DataFrame(columns=["item_id", "tag"]), ["{plot}"])


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
        random_ratio_split(10, [8, 1], seed=0)
    with pytest.raises(ValueError, match="data.split.strategy"):
        make_split("kfold", np.zeros(3, dtype=int), np.zeros(3), [8, 1, 1], 0)
