"""Damaged MovieLens-style files that parse as valid rows are refused, with file, line and column: negative ids,
implausible times (a last line cut short, milliseconds), duplicate or mis-separated header columns."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from lmrec.data.io.checks import RowChecks
from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import TextFormat, read_json_lines, read_text_table
from lmrec.data.sources.base import RatingScale, TimeRange, interactions_from
from lmrec.data.sources.movielens import MovieLensLatest
from lmrec.errors import ConfigError

MOVIES = "movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Action\n"
RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,1,5.0,1493846415\n"
TAGS = "userId,movieId,tag,timestamp\n1,2,classic,1445714994\n"
COLUMNS = ("userId", "movieId", "rating", "timestamp")
RANGE = "between 788918400 (1995-01-01) and 9999999999 (2286-11-20)"


def write(root: Path, movies: str = MOVIES, ratings: str = RATINGS, tags: str = TAGS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("movies.csv", movies), ("ratings.csv", ratings), ("tags.csv", tags)):
        (root / name).write_bytes(text.encode())
    return root


def error(root: Path, **options) -> str:
    with pytest.raises(DataValidationError) as info:
        MovieLensLatest(root, **options).read()
    return str(info.value)


@pytest.mark.parametrize(
    ("files", "where", "expected"),
    [
        ({"ratings": RATINGS + "-3,1,4.0,964982703\n"}, "ratings.csv:5: column 'userId'", "user id >= 1, got -3"),
        ({"ratings": RATINGS + "3,-1,4.0,964982703\n"}, "ratings.csv:5: column 'movieId'", "movie id >= 1, got -1"),
        ({"movies": MOVIES + "0,Zero (2000),Drama\n"}, "movies.csv:4: column 'movieId'", "movie id >= 1, got 0"),
        ({"tags": TAGS + "-7,1,funny,1445714994\n"}, "tags.csv:3: column 'userId'", "user id >= 1, got -7"),
        # a time before MovieLens began, in the middle of the file (no cut-off last line to blame)
        (
            {"ratings": RATINGS.replace("964981247", "96498")},
            "ratings.csv:3: column 'timestamp'",
            f"expected a Unix time in seconds {RANGE}, got 96498",
        ),
        # milliseconds where seconds belong
        (
            {"ratings": RATINGS + "3,2,4.0,1493846415000\n"},
            "ratings.csv:5: column 'timestamp'",
            f"{RANGE}, got 1493846415000",
        ),
        ({"tags": TAGS + "2,1,funny,1\n"}, "tags.csv:3: column 'timestamp'", f"{RANGE}, got 1"),
    ],
)
def test_implausible_values_are_located_errors(files, where, expected, tmp_path):
    root = write(tmp_path, **files)
    message = error(root)
    assert message.startswith(f"{root / where}: ") and message.endswith(expected)


def test_a_last_line_cut_short_says_so(tmp_path):
    root = write(tmp_path, ratings=RATINGS.rstrip("\n")[:-5])  # the download stopped inside the last timestamp
    assert error(root) == (
        f"{root / 'ratings.csv'}:4: column 'timestamp': expected a Unix time in seconds {RANGE}, got 14938 "
        "(the file's last line has no line end: was the file cut short?)"
    )
    root = write(tmp_path / "fields", ratings=RATINGS.rstrip("\n")[:-13])  # cut inside the rating: 3 fields
    assert error(root).startswith(f"{root / 'ratings.csv'}:4: malformed row: expected 4 fields")
    assert error(root).endswith("got 3 (the file's last line has no line end: was the file cut short?)")
    # the same bad value on a complete last line is an ordinary error, with no guess about the file's end
    root = write(tmp_path / "complete", ratings=RATINGS.rstrip("\n")[:-5] + "\n")
    assert error(root).endswith("got 14938")


def test_a_json_lines_file_cut_short_says_so(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"user": 1, "item": 2}\n{"user": 3, "it')
    raw = read_json_lines(path, ["user", "item"])
    assert not raw.ends_with_newline
    with pytest.raises(DataValidationError, match=r"reviews.jsonl:2: malformed row: not valid JSON .* cut short\?\)$"):
        RowChecks(raw).resolve(False, {})


def test_unknown_item_is_reported_before_an_implausible_time(tmp_path):
    root = write(tmp_path, ratings=RATINGS + "3,9,4.0,1\n")
    assert error(root).startswith(f"{root / 'ratings.csv'}:5: column 'movieId': unknown item: movieId 9")


def test_the_time_bounds_are_options_recorded_in_the_cache_key(tmp_path):
    root = write(tmp_path, ratings=RATINGS.replace("964981247", "96498"))
    source = MovieLensLatest(root, min_timestamp=None)
    assert source.read().interactions["timestamp"].tolist() == [964982703, 96498, 1493846415]
    assert source.options()["min_timestamp"] is None
    assert MovieLensLatest(root).options()["min_timestamp"] == 788918400
    assert MovieLensLatest(root).options()["max_timestamp"] == 9_999_999_999
    message = error(root, min_timestamp=970000000, max_timestamp=1500000000)
    assert message.endswith("between 970000000 (2000-09-26) and 1500000000 (2017-07-14), got 964982703")
    with pytest.raises(ConfigError, match="min_timestamp=5 must not be after data.source.max_timestamp=1"):
        TimeRange(5, 1)
    with pytest.raises(ConfigError, match=r"data.source.max_timestamp='2020'; expected Unix seconds"):
        MovieLensLatest(root, max_timestamp="2020")


def test_drop_invalid_counts_implausible_rows(tmp_path, caplog):
    ratings = RATINGS + "-3,1,4.0,964982703\n3,2,4.0,1\n3,1,4.0,964982703\n"
    root = write(tmp_path, ratings=ratings)
    with caplog.at_level(logging.WARNING, logger="lmrec.data.io"):
        tables = MovieLensLatest(root).read(drop_invalid=True)
    assert tables.interactions["user_id"].tolist() == [1, 1, 2, 3]
    assert tables.dropped["ratings.csv"] == {"userId out of range": 1, "timestamp out of range": 1}
    assert "dropped 2 rows (1 userId out of range, 1 timestamp out of range)" in caplog.text


def test_ids_are_non_negative_unless_a_source_allows_any(tmp_path):
    path = tmp_path / "inter.csv"
    path.write_text("userId,movieId,rating,timestamp\n0,5,3.0,10\n-2,5,4.0,11\n")

    def read(**options):
        raw = read_text_table(path, TextFormat(), COLUMNS)
        return interactions_from(raw, COLUMNS, np.array([5]), "items.csv", RatingScale(1, 5), False, {}, **options)

    with pytest.raises(
        DataValidationError, match=r"inter.csv:3: column 'userId': expected an integer user id >= 0, got -2"
    ):
        read()
    assert read(min_id=None)["user_id"].tolist() == [0, -2]  # e.g. hashed ids


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "userId,movieId,rating,rating",
            "column 'rating' appears 2 times in the header (fields 3, 4); expected each column once",
        ),
        (
            "userId;movieId;rating;timestamp",
            "found 'userId;movieId;rating;timestamp' (the header is one field: is the file separated by ';' instead "
            "of ','?)",
        ),
        ("userId\tmovieId\trating\ttimestamp", "(the header is one field: is the file separated by '\\t' instead"),
    ],
)
def test_header_mistakes_are_named_on_line_1(header, expected, tmp_path):
    separator = ";" if ";" in header else "\t" if "\t" in header else ","
    rows = RATINGS.split("\n", 1)[1].replace(",", separator)
    root = write(tmp_path, ratings=f"{header}\n{rows}")
    message = error(root)
    assert message.startswith(f"{root / 'ratings.csv'}:1: column ") and expected in message
