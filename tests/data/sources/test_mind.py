"""MIND source: official folder layout and exact file format, written by the tests."""

from __future__ import annotations

import calendar
from pathlib import Path

import numpy as np
import pytest

from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.mind import MIND
from lmrec.errors import ConfigError

ENT = (
    '[{"Label": "Prince Philip, Duke of Edinburgh", "Type": "P", "WikidataId": "Q80976", "Confidence": 1.0, '
    '"OccurrenceOffsets": [48], "SurfaceForms": ["Prince Philip"]}]'
)
NEWS_TRAIN = [
    ["N1", "lifestyle", "lifestyleroyals", 'The "Brands" Queen Loves', "Shop like a royal.", "https://a/1", ENT, "[]"],
    ["N2", "news", "newsus", "Storm hits coast", "", "https://a/2", "[]", "[]"],
    ["N3", "sports", "football_nfl", "Café owner wins", "Ünïcode abstract", "https://a/3", "[]", ""],
    ["N4", "finance", "markets", "Stocks rally", "Markets rose.", "https://a/4", "[]", "[]"],
]  # fmt: skip
# The dev folder repeats N2 and N4 identically (as the official files do) and adds N5.
NEWS_DEV = [NEWS_TRAIN[1], NEWS_TRAIN[3], ["N5", "video", "news", "Cat video", "A cat.", "https://a/5", "[]", "[]"]]
BEHAVIORS_TRAIN = [
    ["1", "U1", "11/14/2019 8:55:22 AM", "N1 N2", "N3-1 N4-0"],
    ["2", "U2", "11/14/2019 1:05:00 PM", "", "N1-0 N2-1 N4-1"],  # empty history
    ["3", "U1", "11/15/2019 12:00:01 AM", "N1 N2", "N4-1 N3-0"],
]
BEHAVIORS_DEV = [
    ["1", "U1", "11/16/2019 9:00:00 AM", "N1 N2", "N5-1 N3-0"],
    ["2", "U3", "11/16/2019 10:30:00 PM", "N4", "N2-0 N5-1 N1-0"],  # a user only in dev
]


def utc(text: str) -> int:
    from datetime import datetime

    return calendar.timegm(datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p").timetuple())


def write_tsv(path: Path, rows: list[list[str]], newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(newline.join("\t".join(row) for row in rows).encode("utf-8") + newline.encode())


def write_mind(root: Path, news_dev=None, behaviors_train=None, behaviors_dev=None, newline: str = "\n") -> Path:
    write_tsv(root / "MINDsmall_train" / "news.tsv", NEWS_TRAIN, newline)
    write_tsv(root / "MINDsmall_train" / "behaviors.tsv", behaviors_train or BEHAVIORS_TRAIN, newline)
    write_tsv(root / "MINDsmall_dev" / "news.tsv", news_dev or NEWS_DEV, newline)
    write_tsv(root / "MINDsmall_dev" / "behaviors.tsv", behaviors_dev or BEHAVIORS_DEV, newline)
    return root


def rows(frame) -> list[tuple]:
    return [tuple(r) for r in frame[["user_id", "item_id", "timestamp", "split"]].itertuples(index=False)]


def test_items_are_the_union_of_news_files_with_exact_text(tmp_path: Path) -> None:
    tables = MIND(write_mind(tmp_path), history=False, val_share=0.5).read()
    items = tables.items.set_index("item_id")
    assert list(items.index) == ["N1", "N2", "N3", "N4", "N5"]
    assert items.loc["N1", "title"] == 'The "Brands" Queen Loves'  # a bare quote is text, not quoting
    assert items.loc["N3", "title"] == "Café owner wins" and items.loc["N3", "abstract"] == "Ünïcode abstract"
    assert items.loc["N2", "abstract"] == ""
    assert items.loc["N5", "category"] == "video" and items.loc["N5", "subcategory"] == "news"
    assert tables.users is None


def test_clicks_are_interactions_with_times_and_the_official_split(tmp_path: Path) -> None:
    source = MIND(write_mind(tmp_path), history=False, val_from="dev", val_share=0.5, seed=3)
    frame = source.read().interactions
    assert list(frame.columns) == ["user_id", "item_id", "rating", "timestamp", "split"]
    assert (frame["rating"] == 1.0).all()
    # Clicks only (label 1), in time order; the train folder is "train", the dev folder val or test.
    expected = [
        ("U1", "N3", utc("11/14/2019 8:55:22 AM"), "train"),
        ("U2", "N2", utc("11/14/2019 1:05:00 PM"), "train"),
        ("U2", "N4", utc("11/14/2019 1:05:00 PM"), "train"),
        ("U1", "N4", utc("11/15/2019 12:00:01 AM"), "train"),
        ("U1", "N5", utc("11/16/2019 9:00:00 AM"), None),
        ("U3", "N5", utc("11/16/2019 10:30:00 PM"), None),
    ]
    got = rows(frame)
    assert [r[:3] for r in got] == [e[:3] for e in expected]
    assert [r[3] for r in got[:4]] == ["train"] * 4
    # The dev impressions are split per impression by the seeded draw, and impressions() agrees with the column.
    draw = np.random.default_rng(3).random(3)
    dev_split = ["val" if draw[i] < 0.5 else "test" for i in (1, 2)]
    assert [r[3] for r in got[4:]] == dev_split
    for split in ("val", "test"):
        assert list(source.impressions(split).impression_ids) == [i for i in (1, 2) if dev_split[i - 1] == split]


def test_val_from_train_keeps_the_whole_dev_folder_as_test(tmp_path: Path) -> None:
    source = MIND(write_mind(tmp_path), history=False, val_from="train", val_share=0.5, seed=1)
    frame = source.read().interactions
    assert set(frame.loc[frame["timestamp"] >= utc("11/16/2019 9:00:00 AM"), "split"]) == {"test"}
    draw = np.random.default_rng(1).random(4)
    val_ids = [i for i in (1, 2, 3) if draw[i] < 0.5]
    assert list(source.impressions("val").impression_ids) == val_ids
    test = source.impressions("test")
    assert list(test.impression_ids) == [1, 2] and list(test.users) == ["U1", "U3"]
    assert list(test.candidate_ids()) == ["N5", "N3", "N2", "N5", "N1"] and list(test.labels) == [1, 0, 0, 1, 0]
    assert list(test.offsets) == [0, 2, 5] and list(test.lines) == [1, 2]
    assert list(test.history_ids()) == ["N1", "N2", "N4"] and list(test.history_offsets) == [0, 2, 3]


def test_history_clicks_are_dated_before_the_users_first_impression(tmp_path: Path) -> None:
    frame = MIND(write_mind(tmp_path), history=True, val_from="dev", duplicates="first").read().interactions
    history = [r for r in rows(frame) if r[2] < utc("11/14/2019 8:55:22 AM") or r[0] == "U3" and r[1] == "N4"]
    first_u1, first_u3 = utc("11/14/2019 8:55:22 AM"), utc("11/16/2019 10:30:00 PM")
    # U1's history N1 N2 (the same in all three of U1's impressions: listed once), U3's N4; all are "train".
    assert ("U1", "N1", first_u1 - 2, "train") in history and ("U1", "N2", first_u1 - 1, "train") in history
    assert ("U3", "N4", first_u3 - 1, "train") in rows(frame)
    assert len(frame) == 6 + 3
    # U2's empty history adds nothing.
    assert rows(frame[frame["user_id"] == "U2"]) == [
        ("U2", "N2", utc("11/14/2019 1:05:00 PM"), "train"),
        ("U2", "N4", utc("11/14/2019 1:05:00 PM"), "train"),
    ]


def test_a_repeated_click_follows_the_duplicates_policy(tmp_path: Path) -> None:
    dev = [*BEHAVIORS_DEV, ["3", "U2", "11/16/2019 11:00:00 PM", "", "N4-1 N1-0"]]  # U2 clicked N4 in train too
    root = write_mind(tmp_path, behaviors_dev=dev)
    with pytest.raises(DataValidationError) as err:
        MIND(root, history=False, duplicates="error").read()
    assert err.value.path == root / "MINDsmall_dev" / "behaviors.tsv" and err.value.line == 3
    assert err.value.column == "impressions" and "line 2 of MINDsmall_train/behaviors.tsv" in err.value.message
    tables = MIND(root, history=False, val_from="dev", duplicates="first").read()
    u2 = rows(tables.interactions[tables.interactions["user_id"] == "U2"])
    assert ("U2", "N4", utc("11/14/2019 1:05:00 PM"), "train") in u2 and len(u2) == 2  # the earliest click kept
    assert sum(tables.dropped["behaviors.tsv"].values()) == 1


def test_identical_news_rows_are_one_item_and_conflicting_ones_an_error(tmp_path: Path) -> None:
    conflict = [NEWS_TRAIN[1], ["N4", "finance", "markets", "Stocks fall", "Markets rose.", "u", "[]", "[]"]]
    root = write_mind(tmp_path, news_dev=conflict + NEWS_DEV[2:])
    with pytest.raises(DataValidationError) as err:
        MIND(root).read()
    assert err.value.path == root / "MINDsmall_dev" / "news.tsv" and err.value.line == 2
    assert err.value.column == "title" and "line 4 of MINDsmall_train/news.tsv" in err.value.message


@pytest.mark.parametrize(
    ("where", "row", "line", "column", "words"),
    [
        ("news", ["N9", "a", "b", "title", "an\tabstract with a tab", "u", "[]", "[]"], 5, None, "expected 8 fields"),
        ("news", ["N9", "a", "b", "t", "x", "u", "{not json", "[]"], 5, "title entities", "JSON array"),
        ("behaviors", ["4", "U1", "2019-11-15 08:00:00", "", "N1-1"], 4, "time", "11/15/2019 8:55:22 AM"),
        ("behaviors", ["4", "U1", "11/15/2019 8:00:00 AM", "N1 N77", "N1-1"], 4, "history", "N77"),
        ("behaviors", ["4", "U1", "11/15/2019 8:00:00 AM", "", "N1-1 N2-2"], 4, "impressions", "'N2-2'"),
        ("behaviors", ["4", "U1", "11/15/2019 8:00:00 AM", "", "N1-1 N88-0"], 4, "impressions", "N88"),
        ("behaviors", ["x", "U1", "11/15/2019 8:00:00 AM", "", "N1-1"], 4, "impression id", "integer"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, where, row, line, column, words) -> None:
    news = [*NEWS_TRAIN, row] if where == "news" else NEWS_TRAIN
    behaviors = [*BEHAVIORS_TRAIN, row] if where == "behaviors" else BEHAVIORS_TRAIN
    root = write_mind(tmp_path, behaviors_train=behaviors)
    write_tsv(root / "MINDsmall_train" / "news.tsv", news)
    with pytest.raises(DataValidationError) as err:
        MIND(root).read()
    file = "news.tsv" if where == "news" else "behaviors.tsv"
    assert err.value.path == root / "MINDsmall_train" / file
    assert (err.value.line, err.value.column) == (line, column)
    assert words in err.value.message


def test_drop_invalid_drops_and_counts_per_folder(tmp_path: Path) -> None:
    behaviors = [*BEHAVIORS_TRAIN, ["4", "U1", "bad time", "", "N1-1"]]
    root = write_mind(tmp_path, behaviors_train=behaviors)
    tables = MIND(root, history=False, duplicates="first").read(drop_invalid=True)
    assert tables.dropped["MINDsmall_train/behaviors.tsv"] == {"invalid time": 1}
    assert len(tables.interactions) == 6


def test_crlf_files_and_missing_files(tmp_path: Path) -> None:
    root = write_mind(tmp_path / "crlf", newline="\r\n")
    assert len(MIND(root, history=False).read().interactions) == 6
    (root / "MINDsmall_dev" / "behaviors.tsv").unlink()
    with pytest.raises(DataValidationError, match="MINDsmall_dev/behaviors.tsv"):
        MIND(root).files()


def test_checksums_cover_the_files_inside_the_split_folders(tmp_path: Path) -> None:
    from lmrec.data.io.checksums import ChecksumError

    root = write_mind(tmp_path)
    assert set(MIND(root).digests(verify=True)) == {
        "MINDsmall_train/news.tsv",
        "MINDsmall_train/behaviors.tsv",
        "MINDsmall_dev/news.tsv",
        "MINDsmall_dev/behaviors.tsv",
    }
    (root / "SHA256SUMS").write_text(f"{'0' * 64}  MINDsmall_dev/news.tsv\n")
    with pytest.raises(ChecksumError, match="MINDsmall_dev/news.tsv: sha256 mismatch"):
        MIND(root).digests(verify=True)


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="val_from"):
        MIND(tmp_path, val_from="test")
    with pytest.raises(ConfigError, match="val_share"):
        MIND(tmp_path, val_share=1.0)
    with pytest.raises(ConfigError, match="its own folder"):
        MIND(tmp_path, dev="MINDsmall_train")
    assert MIND(tmp_path, test="MINDlarge_test").options()["folders"][-1] == "MINDlarge_test"
