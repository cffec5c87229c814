"""Raw MovieLens loading: the bundled files parse exactly, and every kind of bad input is
reported with file, physical line and column (or dropped and counted when asked to)."""

from __future__ import annotations

import hashlib
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.data.io.checksums import ChecksumError, read_sha256sums
from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.movielens import MovieLensLatest, MovieLensTables, read_movielens_csv
from tests.conftest import BUNDLED_DATA

BUNDLED = BUNDLED_DATA
LOGGER = "lmrec.data.io"  # row checks and checksum verification log under lmrec.data.io.*

MOVIES = (
    "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation\n"
    '2,"American President, The (1995)",Comedy|Drama\n'
    "3,Heat (1995),Action\n"
)
RATINGS = (
    "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,3.5,964981247\n2,1,5.0,964982224\n2,3,0.5,964983815\n"
)
TAGS = 'userId,movieId,tag,timestamp\n1,2,"funny, sad",1445714994\n2,3,classic,1445714996\n'

NEXT_RATING_LINE = RATINGS.count("\n") + 1  # physical line of a row appended to RATINGS
NEXT_MOVIE_LINE = MOVIES.count("\n") + 1
NEXT_TAG_LINE = TAGS.count("\n") + 1


def write_dataset(
    root: Path,
    *,
    movies: str | bytes = MOVIES,
    ratings: str | bytes = RATINGS,
    tags: str | bytes | None = TAGS,
    sums: bool = False,
) -> Path:
    """Write a small dataset; with ``sums`` also a SHA256SUMS for the written files."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"movies.csv": movies, "ratings.csv": ratings}
    if tags is not None:
        files["tags.csv"] = tags
    lines = []
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (root / name).write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    if sums:
        (root / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")
    return root


def load_movielens(
    root: Path,
    *,
    verify: bool = True,
    drop_invalid: bool = False,
    with_tags: bool = True,
    rating_min: float = 0.5,
    rating_max: float = 5.0,
) -> MovieLensTables:
    """What a run does with the files: verify their checksums (when asked), then parse them."""
    source = MovieLensLatest(root, tags=with_tags, rating_min=rating_min, rating_max=rating_max)
    source.digests(verify=verify)
    return read_movielens_csv(root, source.rating_scale, with_tags=with_tags, drop_invalid=drop_invalid)


def input_fingerprint(root: Path, *, with_tags: bool = True, verify: bool = False) -> dict[str, str]:
    return MovieLensLatest(root, tags=with_tags).digests(verify=verify)


def load_error(root: Path, **kwargs: object) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        load_movielens(root, **kwargs)
    return info.value


def assert_located(err: DataValidationError, root: Path, name: str, line: int, column: str | None) -> None:
    """The error names the file (full path), the physical line and the column."""
    path = root / name
    assert err.path == path
    assert err.line == line
    assert err.column == column
    message = str(err)
    assert message.startswith(f"{path}:{line}: ")
    if column is not None:
        assert f"column {column!r}" in message


# --------------------------------------------------------------------------- bundled data


@pytest.fixture(scope="module")
def bundled() -> MovieLensTables:
    return load_movielens(BUNDLED)


def test_bundled_counts(bundled: MovieLensTables) -> None:
    assert len(bundled.ratings) == 100_836
    assert len(bundled.movies) == 9_742
    assert len(bundled.tags) == 3_683
    assert bundled.ratings["user_id"].nunique() == 610


def test_bundled_dtypes(bundled: MovieLensTables) -> None:
    assert list(bundled.ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert [str(t) for t in bundled.ratings.dtypes] == ["int64", "int64", "float32", "int64"]
    assert list(bundled.movies.columns) == ["item_id", "title", "genres"]
    assert bundled.movies["item_id"].dtype == np.int64
    assert pd.api.types.is_string_dtype(bundled.movies["title"])
    assert pd.api.types.is_string_dtype(bundled.movies["genres"])
    assert list(bundled.tags.columns) == ["user_id", "item_id", "tag", "timestamp"]
    assert [bundled.tags[c].dtype for c in ("user_id", "item_id", "timestamp")] == [np.int64] * 3
    assert pd.api.types.is_string_dtype(bundled.tags["tag"])
    for frame in (bundled.ratings, bundled.movies, bundled.tags):
        assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0


def test_bundled_known_rows(bundled: MovieLensTables) -> None:
    first = bundled.ratings.iloc[0]
    assert (first.user_id, first.item_id, first.rating, first.timestamp) == (1, 1, 4.0, 964982703)
    movies = bundled.movies.set_index("item_id")
    assert movies.loc[1, "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert movies.loc[11, "title"] == "American President, The (1995)"
    assert movies.loc[29, "title"] == "City of Lost Children, The (Cité des enfants perdus, La) (1995)"
    tag = bundled.tags.iloc[0]
    assert (tag.user_id, tag.item_id, tag.tag, tag.timestamp) == (2, 60756, "funny", 1445714994)


def test_bundled_ratings_are_half_stars_in_range(bundled: MovieLensTables) -> None:
    ratings = bundled.ratings["rating"].to_numpy()
    assert ratings.min() == 0.5 and ratings.max() == 5.0
    assert np.all(ratings * 2 == np.round(ratings * 2))


def test_bundled_digests_are_the_verified_manifest_entries(bundled: MovieLensTables) -> None:
    manifest = read_sha256sums(BUNDLED / "SHA256SUMS")
    expected = {name: manifest[name] for name in ("ratings.csv", "movies.csv", "tags.csv")}
    assert MovieLensLatest(BUNDLED).digests(verify=True) == expected
    assert input_fingerprint(BUNDLED) == expected


def test_bundled_without_verification_has_same_digests(bundled: MovieLensTables) -> None:
    verified = MovieLensLatest(BUNDLED).digests(verify=True)
    assert input_fingerprint(BUNDLED, with_tags=False) == {k: v for k, v in verified.items() if k != "tags.csv"}


def test_bundled_source_tables_follow_the_contract() -> None:
    tables = MovieLensLatest(BUNDLED).read()
    assert list(tables.interactions.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert list(tables.items.columns) == ["item_id", *MovieLensLatest.item_fields] and tables.users is None
    toy_story = tables.items.set_index("item_id").loc[1]
    assert toy_story["genres"] == "Adventure, Animation, Children, Comedy, Fantasy"
    assert toy_story["tags"] == "pixar, fun"  # its two tags, most frequent first


# --------------------------------------------------------------------------- small valid data


def test_small_dataset_loads(tmp_path: Path) -> None:
    tables = load_movielens(write_dataset(tmp_path))
    assert tables.movies["title"].tolist()[1] == "American President, The (1995)"
    assert tables.tags["tag"].tolist() == ["funny, sad", "classic"]
    assert tables.ratings["rating"].tolist() == [4.0, 3.5, 5.0, 0.5]


def test_without_tags_needs_no_tags_file(tmp_path: Path) -> None:
    tables = load_movielens(write_dataset(tmp_path, tags=None), with_tags=False)
    assert tables.tags.empty
    assert list(tables.tags.columns) == ["user_id", "item_id", "tag", "timestamp"]
    assert tables.tags["user_id"].dtype == np.int64
    source = MovieLensLatest(tmp_path)  # tags=None: tags.csv is used when it is there
    assert set(source.digests()) == {"ratings.csv", "movies.csv"}
    assert (source.read().items["tags"] == "").all()


def test_crlf_and_bom_are_accepted(tmp_path: Path) -> None:
    ratings = ("\ufeff" + RATINGS.replace("\n", "\r\n") + "3,9,4.0,1\r\n").encode("utf-8")
    err = load_error(write_dataset(tmp_path, ratings=ratings))
    assert_located(err, tmp_path, "ratings.csv", NEXT_RATING_LINE, "movieId")  # lines still counted right


def test_custom_rating_range(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    err = load_error(root, rating_min=1.0, rating_max=5.0)
    assert_located(err, root, "ratings.csv", 5, "rating")
    assert "expected a number between 1.0 and 5.0, got '0.5'" in str(err)
    with pytest.raises(ValueError, match="rating_min"):
        load_movielens(root, rating_min=5.0, rating_max=1.0)


def test_multiline_quoted_title_keeps_physical_line_numbers(tmp_path: Path) -> None:
    movies = MOVIES + '4,"Two\nLines (1999)",Drama\n' + "5,Fine (2000),Drama\n"
    tables = load_movielens(write_dataset(tmp_path, movies=movies))
    assert tables.movies["title"].tolist()[3] == "Two\nLines (1999)"
    # The record for movie 4 spans two physical lines, so the next row is two lines further down.
    err = load_error(write_dataset(tmp_path, movies=movies + "x,Bad (2001),Drama\n"))
    assert_located(err, tmp_path, "movies.csv", NEXT_MOVIE_LINE + 3, "movieId")


# --------------------------------------------------------------------------- one test per error kind


def test_missing_file(tmp_path: Path) -> None:
    root = write_dataset(tmp_path)
    (root / "ratings.csv").unlink()
    err = load_error(root)
    assert err.path == root / "ratings.csv" and err.line is None
    assert str(err).startswith(f"{root / 'ratings.csv'}: file not found")


def test_missing_tags_file_when_tags_wanted(tmp_path: Path) -> None:
    err = load_error(write_dataset(tmp_path, tags=None))
    assert err.path == tmp_path / "tags.csv" and "file not found" in str(err)


def test_missing_header_column(tmp_path: Path) -> None:
    ratings = RATINGS.replace("rating,", "score,", 1)
    err = load_error(write_dataset(tmp_path, ratings=ratings))
    assert_located(err, tmp_path, "ratings.csv", 1, "rating")
    assert "missing column 'rating'" in str(err)
    assert "found 'userId', 'movieId', 'score', 'timestamp'" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    err = load_error(write_dataset(tmp_path, tags=""))
    assert_located(err, tmp_path, "tags.csv", 1, None)
    assert "empty file" in str(err)


@pytest.mark.parametrize(
    ("name", "bad_row", "line", "column", "expected"),
    [
        ("ratings.csv", "3,1,4.0\n", NEXT_RATING_LINE, None, "malformed row: expected 4 fields"),
        ("ratings.csv", "3,1,4.0,1,extra\n", NEXT_RATING_LINE, None, "got 5"),
        ("ratings.csv", ",1,4.0,964982703\n", NEXT_RATING_LINE, "userId", "got an empty field"),
        ("ratings.csv", "u3,1,4.0,964982703\n", NEXT_RATING_LINE, "userId", "expected an integer user id"),
        ("ratings.csv", "3,1.0,4.0,964982703\n", NEXT_RATING_LINE, "movieId", "got '1.0'"),
        ("ratings.csv", "3,1,abc,964982703\n", NEXT_RATING_LINE, "rating", "got 'abc'"),
        ("ratings.csv", "3,1,,964982703\n", NEXT_RATING_LINE, "rating", "got an empty field"),
        ("ratings.csv", "3,1,NaN,964982703\n", NEXT_RATING_LINE, "rating", "got 'NaN'"),
        ("ratings.csv", "3,1,5.5,964982703\n", NEXT_RATING_LINE, "rating", "got '5.5'"),
        ("ratings.csv", "3,1,0.0,964982703\n", NEXT_RATING_LINE, "rating", "got '0.0'"),
        ("ratings.csv", "3,1,inf,964982703\n", NEXT_RATING_LINE, "rating", "got 'inf'"),
        ("ratings.csv", "3,1,4.0,9649.5\n", NEXT_RATING_LINE, "timestamp", "expected an integer Unix"),
        ("ratings.csv", "3,1,4.0,\n", NEXT_RATING_LINE, "timestamp", "got an empty field"),
        ("ratings.csv", "3,99,4.0,964982703\n", NEXT_RATING_LINE, "movieId", "unknown item: movieId 99"),
        ("ratings.csv", "2,3,1.0,964982703\n", NEXT_RATING_LINE, "movieId", "rated movieId 3 on line 5"),
        ("movies.csv", "4,Solo (2018)\n", NEXT_MOVIE_LINE, None, "expected 3 fields"),
        ("movies.csv", '4,"Bad" quote,Drama\n', NEXT_MOVIE_LINE, None, "malformed row"),
        ("movies.csv", ",Nameless (2018),Drama\n", NEXT_MOVIE_LINE, "movieId", "got an empty field"),
        ("movies.csv", "2,Again (2018),Drama\n", NEXT_MOVIE_LINE, "movieId", "(first defined on line 3)"),
        ("tags.csv", "3,1,x\n", NEXT_TAG_LINE, None, "expected 4 fields"),
        ("tags.csv", "3,x,good,1445714994\n", NEXT_TAG_LINE, "movieId", "got 'x'"),
        ("tags.csv", "3,1,good,soon\n", NEXT_TAG_LINE, "timestamp", "got 'soon'"),
        ("tags.csv", "3,42,good,1445714994\n", NEXT_TAG_LINE, "movieId", "movieId 42 is not in movies.csv"),
    ],
)  # fmt: skip
def test_row_error_is_located(
    tmp_path: Path, name: str, bad_row: str, line: int, column: str | None, expected: str
) -> None:
    contents = {"movies.csv": MOVIES, "ratings.csv": RATINGS, "tags.csv": TAGS}
    valid_after = {
        "movies.csv": "9,Valid (2001),Drama\n",
        "ratings.csv": "9,3,3.0,1\n",
        "tags.csv": "9,1,ok,1\n",
    }
    contents[name] += bad_row + valid_after[name]
    root = write_dataset(
        tmp_path, movies=contents["movies.csv"], ratings=contents["ratings.csv"], tags=contents["tags.csv"]
    )
    err = load_error(root)
    assert_located(err, root, name, line, column)
    assert expected in str(err)


def test_rating_message_format(tmp_path: Path) -> None:
    err = load_error(write_dataset(tmp_path, ratings=RATINGS + "3,1,abc,964982703\n"))
    assert str(err) == (
        f"{tmp_path / 'ratings.csv'}:{NEXT_RATING_LINE}: column 'rating': "
        "expected a number between 0.5 and 5.0, got 'abc'"
    )


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    movies = MOVIES.encode() + b"4,Caf\xe9 (1999),Drama\n"
    err = load_error(write_dataset(tmp_path, movies=movies))
    assert_located(err, tmp_path, "movies.csv", NEXT_MOVIE_LINE, None)
    assert "UTF-8" in str(err)


def test_first_offending_line_in_file_order_wins(tmp_path: Path) -> None:
    # Line 3 fails a late check (unknown item), line 4 an early one (malformed): line 3 is reported.
    lines = RATINGS.splitlines(keepends=True)
    ratings = lines[0] + lines[1] + "1,77,4.0,964982703\n" + "1,2\n" + "".join(lines[2:])
    err = load_error(write_dataset(tmp_path, ratings=ratings))
    assert_located(err, tmp_path, "ratings.csv", 3, "movieId")
    assert "unknown item" in str(err)


def test_row_with_several_problems_reports_leftmost_check(tmp_path: Path) -> None:
    err = load_error(write_dataset(tmp_path, ratings=RATINGS + "x,99,9.0,1\n"))
    assert_located(err, tmp_path, "ratings.csv", NEXT_RATING_LINE, "userId")


def test_error_pickles_with_location() -> None:
    err = pickle.loads(pickle.dumps(DataValidationError(Path("r.csv"), 17, "rating", "bad")))
    assert (err.path, err.line, err.column, err.message) == (Path("r.csv"), 17, "rating", "bad")


# --------------------------------------------------------------------------- drop_invalid


def test_drop_invalid_drops_exactly_bad_rows_and_logs_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ratings = RATINGS + (
        "3,1,9.0,964982703\n"  # rating out of range
        "3,2,4.0\n"  # malformed
        "3,3,0.0,964982703\n"  # rating out of range
        "3,99,4.0,964982703\n"  # unknown item
        "3,1,4.5,964982799\n"  # kept: the out-of-range (3, 1) row above was dropped, so not a duplicate
        "1,2,2.0,964982703\n"  # duplicate of line 3
        "3,2,x,964982703\n"  # invalid rating
    )
    root = write_dataset(tmp_path, ratings=ratings)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tables = load_movielens(root, drop_invalid=True)
    kept = tables.ratings
    assert list(zip(kept.user_id, kept.item_id, kept.rating, strict=True)) == [
        (1, 1, 4.0),
        (1, 2, 3.5),
        (2, 1, 5.0),
        (2, 3, 0.5),
        (3, 1, 4.5),
    ]
    assert isinstance(kept.index, pd.RangeIndex)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{root / 'ratings.csv'}: dropped 6 rows (1 malformed, 1 invalid rating, 2 rating out of range, "
        "1 unknown item, 1 duplicate rating)"
    ]


def test_drop_invalid_cascades_from_movies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    movies = MOVIES.replace("3,Heat (1995),Action", "3,Heat (1995)") + "1,Duplicate (2000),Drama\n"
    root = write_dataset(tmp_path, movies=movies)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tables = load_movielens(root, drop_invalid=True)
    assert tables.movies["item_id"].tolist() == [1, 2]
    assert tables.movies["title"].tolist()[0] == "Toy Story (1995)"  # first definition kept
    assert 3 not in set(tables.ratings["item_id"]) and 3 not in set(tables.tags["item_id"])
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"{root / 'movies.csv'}: dropped 2 rows (1 malformed, 1 duplicate movieId)",
        f"{root / 'ratings.csv'}: dropped 1 row (1 unknown item)",
        f"{root / 'tags.csv'}: dropped 1 row (1 unknown item)",
    ]


def test_drop_invalid_on_clean_data_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tables = load_movielens(write_dataset(tmp_path), drop_invalid=True)
    assert len(tables.ratings) == 4 and not caplog.records


def test_drop_invalid_still_raises_on_missing_column(tmp_path: Path) -> None:
    err = load_error(write_dataset(tmp_path, movies=MOVIES.replace("genres", "genre", 1)), drop_invalid=True)
    assert_located(err, tmp_path, "movies.csv", 1, "genres")


# --------------------------------------------------------------------------- verification


def test_verified_load_uses_manifest(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, sums=True)
    verified = MovieLensLatest(root).digests(verify=True)
    assert verified == {k: v for k, v in read_sha256sums(root / "SHA256SUMS").items()}
    assert input_fingerprint(root) == verified


def test_checksum_mismatch_raises_even_with_drop_invalid(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, sums=True)
    (root / "ratings.csv").write_text(RATINGS.replace("4.0", "4.5"), encoding="utf-8")
    with pytest.raises(ChecksumError, match="ratings.csv"):
        load_movielens(root, drop_invalid=True)
    assert load_movielens(root, verify=False).ratings["rating"].iloc[0] == 4.5


def test_missing_manifest_skips_verification(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_dataset(tmp_path)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        digests = MovieLensLatest(root).digests(verify=True)
    assert any("skipping checksum verification" in r.getMessage() for r in caplog.records)
    assert digests == input_fingerprint(root)


def test_manifest_without_entry_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_dataset(tmp_path, sums=True)
    manifest = root / "SHA256SUMS"
    manifest.write_text(
        "".join(line for line in manifest.read_text().splitlines(keepends=True) if "tags.csv" not in line)
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        digests = MovieLensLatest(root).digests(verify=True)
    assert any("no entry for tags.csv" in r.getMessage() for r in caplog.records)
    assert set(digests) == {"ratings.csv", "movies.csv", "tags.csv"}


def test_input_fingerprint_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="file not found"):
        input_fingerprint(write_dataset(tmp_path, tags=None))
    assert set(input_fingerprint(tmp_path, with_tags=False)) == {"ratings.csv", "movies.csv"}


def test_blank_lines_hold_no_record_and_keep_line_numbers(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, ratings=RATINGS + "\n" + "3,1,abc,964982703\n\n")
    err = load_error(root)
    assert_located(err, root, "ratings.csv", NEXT_RATING_LINE + 1, "rating")
    clean = write_dataset(tmp_path / "clean", ratings=RATINGS + "\n\n")
    assert len(load_movielens(clean, verify=False).ratings) == len(RATINGS.splitlines()) - 1
