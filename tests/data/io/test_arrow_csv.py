"""The pyarrow fast path of `read_text_table(columnar=True)`: the same records, lines and errors as the exact
`csv`-module path, and a fallback to it whenever the two could disagree."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lmrec.data.io.checks import RowChecks
from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import TextFormat, read_text_table

COLUMNS = ("userId", "movieId", "rating", "timestamp")


def read_both(path):
    fast = read_text_table(path, TextFormat(), COLUMNS, columnar=True)
    exact = read_text_table(path, TextFormat(), COLUMNS)
    return fast, exact


def test_unquoted_csv_takes_the_fast_path_with_the_same_records_and_lines(tmp_path):
    path = tmp_path / "ratings.csv"
    rows = "".join(f"{u},{u * 7 % 13},{(u % 10 + 1) / 2},{1000 + u}\r\n" for u in range(1, 500))
    path.write_bytes(
        b"\xef\xbb\xbfuserId,movieId,rating,timestamp,extra\r\n" + rows.encode().replace(b"\r\n", b",x\r\n")
    )
    fast, exact = read_both(path)
    assert all(isinstance(fast.columns[c], pa.Array) for c in COLUMNS)  # parsed by pyarrow
    assert all(isinstance(exact.columns[c], list) for c in COLUMNS)
    assert {c: fast.columns[c].to_pylist() for c in COLUMNS} == exact.columns
    assert fast.lines.tolist() == exact.lines.tolist() == list(range(2, 501))
    assert fast.header == exact.header == [*COLUMNS, "extra"]
    checks = RowChecks(fast)
    assert checks.integers("userId", "an id").tolist() == list(range(1, 500))
    assert checks.numbers("rating", 0.5, 5.0)[:3].tolist() == [1.0, 1.5, 2.0]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'userId,movieId,rating,timestamp\n1,2,"3.5",4\n5,6,4.0,8\n', "a quote"),
        (b"userId,movieId,rating,timestamp\n1,2,3.5,4\n\n5,6,4.0,8\n", "a blank line"),
    ],
)
def test_files_the_fast_path_cannot_vouch_for_take_the_exact_path(tmp_path, content, why):
    path = tmp_path / "ratings.csv"
    path.write_bytes(content)
    fast, exact = read_both(path)
    assert isinstance(fast.columns["rating"], list), why
    assert fast.columns == exact.columns and fast.lines.tolist() == exact.lines.tolist()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (b"5,6\n", "ratings.csv:3: malformed row: expected 4 fields (userId,movieId,rating,timestamp), got 2"),
        (b"5,6,abc,8\n", "ratings.csv:3: column 'rating': expected a number between 0.5 and 5.0, got 'abc'"),
        (b"5,6,9.0,8\n", "ratings.csv:3: column 'rating': expected a number between 0.5 and 5.0, got '9.0'"),
        (b"5,x6,4.0,8\n", "ratings.csv:3: column 'movieId': expected an id, got 'x6'"),
        (b"5,6,4.0,8,caf\xe9\n", "ratings.csv:3: expected UTF-8 text, got undecodable byte(s)"),
    ],
)
def test_errors_are_the_same_on_both_paths(tmp_path, row, message):
    path = tmp_path / "ratings.csv"
    path.write_bytes(b"userId,movieId,rating,timestamp\n1,2,3.5,4\n" + row + b"7,8,1.0,9\n")
    for columnar in (True, False):
        with pytest.raises(DataValidationError) as info:
            raw = read_text_table(path, TextFormat(), COLUMNS, columnar=columnar)
            checks = RowChecks(raw)
            checks.integers("userId", "an id"), checks.integers("movieId", "an id")
            checks.numbers("rating", 0.5, 5.0)
            checks.resolve(False, {})
        assert str(info.value).startswith(f"{tmp_path}/{message}")


DAT = ("UserID", "MovieID", "Rating", "Timestamp")


@pytest.mark.parametrize(
    ("content", "fast"),
    [
        (b"1::2::5::978300760\r\n3::4::1::978300761\r\n", True),  # pure ASCII: the same in latin-1 and UTF-8
        (b"1::2::5::978300760\n3::4::1::978300761\n", True),
        (b"1::2::5::978300760\n \n3::4::1::978300761\n", False),  # a whitespace-only line the exact reader skips
        (b"1::2::5::978300760\n3::Caf\xe9::1::978300761\n", False),  # latin-1 bytes: the exact reader decodes them
        (b"1::2::5::978300760\n3::4::x::y::1::978300761\n", False),  # surplus fields go back to the free column
    ],
)
def test_double_colon_files_read_the_same_on_both_paths(tmp_path, content, fast):
    path = tmp_path / "ratings.dat"
    path.write_bytes(content)
    fmt = TextFormat("::", encoding="latin-1", header=False, names=DAT, quoted=False, free_column="MovieID")
    columnar = read_text_table(path, fmt, DAT, columnar=True)
    exact = read_text_table(path, fmt, DAT)
    assert isinstance(columnar.columns["Rating"], pa.Array) == fast
    as_lists = {c: v.to_pylist() if isinstance(v, pa.Array) else v for c, v in columnar.columns.items()}
    assert as_lists == exact.columns and columnar.lines.tolist() == exact.lines.tolist()
    assert columnar.n_fields.tolist() == exact.n_fields.tolist()
