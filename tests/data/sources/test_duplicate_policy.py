"""The duplicate (user, item) policy of `interactions_from`: refuse, keep the earliest or latest, or count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import TextFormat, read_text_table
from lmrec.data.sources.base import RatingScale, Source, interactions_from
from lmrec.errors import ConfigError

COLUMNS = ("userId", "movieId", "rating", "timestamp")
# user 1 rates movie 5 three times: at t=10 (3.0), t=5 (4.0), t=10 again (5.0, later in the file).
ROWS = ["1,5,3.0,10", "1,5,4.0,5", "2,5,2.0,1", "1,5,5.0,10", "2,6,1.0,7"]


def _read(tmp_path: Path, policy: str, dropped: dict | None = None):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n" + "\n".join(ROWS) + "\n")
    raw = read_text_table(path, TextFormat(","), COLUMNS)
    return interactions_from(
        raw, COLUMNS, np.array([5, 6]), "movies.csv", RatingScale(0.5, 5.0), False,
        {} if dropped is None else dropped, duplicates=policy,
    )  # fmt: skip


def test_error_names_both_lines(tmp_path):
    with pytest.raises(DataValidationError, match=r"ratings.csv:3.*already rated movieId 5 on line 2"):
        _read(tmp_path, "error")


@pytest.mark.parametrize(
    ("policy", "rating", "timestamp"),
    [("first", 4.0, 5), ("last", 5.0, 10), ("sum", 5.0, 10)],
)
def test_merge_keeps_one_row_per_pair(tmp_path, policy, rating, timestamp):
    dropped: dict = {}
    frame = _read(tmp_path, policy, dropped)
    assert len(frame) == 3 and not frame.duplicated(["user_id", "item_id"]).any()
    row = frame[(frame.user_id == 1) & (frame.item_id == 5)].iloc[0]
    assert (row.rating, row.timestamp) == (rating, timestamp)
    assert sum(dropped["ratings.csv"].values()) == 2  # the merge is reported, never silent
    if policy == "sum":
        weights = dict(zip(zip(frame.user_id, frame.item_id, strict=True), frame.weight, strict=True))
        assert weights == {(1, 5): 3.0, (2, 5): 1.0, (2, 6): 1.0}


def test_unknown_policy_is_a_config_error(tmp_path):
    class Tiny(Source):
        def files(self):
            return []

        def read(self, drop_invalid=False):
            raise NotImplementedError

    with pytest.raises(ConfigError, match="data.source.duplicates='mean'"):
        Tiny(tmp_path, duplicates="mean")
    assert Tiny(tmp_path, duplicates="last").options()["duplicates"] == "last"
