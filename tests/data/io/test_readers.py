"""The generic readers and row checks every source is built from: layouts, encodings, JSON lines, typed columns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmrec.data.io.checks import RowChecks
from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import TextFormat, read_json_lines, read_text_table

DOUBLE_COLON = TextFormat("::", encoding="latin-1", header=False, names=("user", "item", "rating", "ts"), quoted=False)


def test_headerless_multi_character_delimiter_keeps_physical_lines(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_bytes(b"1::1193::5::978300760\r\n\n1::661::3::978302109\n2::3::x::978302109\n")
    raw = read_text_table(path, DOUBLE_COLON, ("user", "item", "rating"))
    assert raw.lines.tolist() == [1, 3, 4] and raw.columns["item"] == ["1193", "661", "3"]
    checks = RowChecks(raw)
    checks.numbers("rating", 1, 5)
    with pytest.raises(DataValidationError) as info:
        checks.resolve(drop_invalid=False, dropped={})
    assert str(info.value) == f"{path}:4: column 'rating': expected a number between 1 and 5, got 'x'"


def test_latin1_text_with_a_next_line_byte_is_one_line(tmp_path):
    path = tmp_path / "movies.dat"
    path.write_bytes("1::Caf\xe9 \x85 Bar (1999)::Drama\n2::Next (2000)::Comedy\n".encode("latin-1"))
    fmt = TextFormat("::", encoding="latin-1", header=False, names=("id", "title", "genres"), quoted=False)
    raw = read_text_table(path, fmt, ("id", "title"))
    assert raw.columns["title"] == ["Caf\xe9 \x85 Bar (1999)", "Next (2000)"] and raw.lines.tolist() == [1, 2]


def test_missing_column_and_wrong_width_are_reported(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("1\t2\t3\n4\t5\n")
    fmt = TextFormat("\t", header=False, names=("user", "item", "rating"), quoted=False)
    with pytest.raises(DataValidationError, match="missing column 'timestamp'.*no header line"):
        read_text_table(path, fmt, ("user", "timestamp"))
    checks = RowChecks(read_text_table(path, fmt, ("user",)))
    with pytest.raises(
        DataValidationError, match=r"u.data:2: malformed row: expected 3 fields \(user,item,rating\), got 2"
    ):
        checks.resolve(False, {})


def test_json_lines_give_typed_columns_and_locate_bad_records(tmp_path):
    path = tmp_path / "reviews.jsonl"
    records = [
        {"user_id": "A1", "parent_asin": "B0", "rating": 5.0, "timestamp": 1588687728923},
        {"user_id": "A2", "parent_asin": "B1", "rating": 4, "timestamp": 1588687728924, "text": "fine"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + '\n{"user_id": "A3", \n[1, 2]\n')
    raw = read_json_lines(path, ("user_id", "rating", "timestamp", "text"))
    assert raw.lines.tolist() == [1, 2, 3, 4] and raw.columns["text"][:2] == [None, "fine"]
    checks = RowChecks(raw)
    assert checks.integers("timestamp", "a timestamp in ms")[:2].tolist() == [1588687728923, 1588687728924]
    assert checks.numbers("rating", 1, 5)[:2].tolist() == [5.0, 4.0]
    keep = checks.resolve(True, dropped := {})
    assert keep.tolist() == [True, True, False, False] and dropped == {"reviews.jsonl": {"malformed": 2}}
    with pytest.raises(DataValidationError, match=r"reviews.jsonl:3: malformed row: not valid JSON"):
        RowChecks(raw).resolve(False, {})
    strings = RowChecks(raw).strings("text", np.array([True, True, False, False]))
    assert strings.tolist() == ["", "fine"]


def test_a_json_field_of_the_wrong_type_is_a_located_error(tmp_path):
    path = tmp_path / "reviews.jsonl"
    path.write_text('{"timestamp": 17}\n{"timestamp": "soon"}\n{"timestamp": true}\n')
    checks = RowChecks(read_json_lines(path, ("timestamp",)))
    checks.integers("timestamp", "an integer timestamp")
    with pytest.raises(DataValidationError, match="reviews.jsonl:2: column 'timestamp': .* got 'soon'"):
        checks.resolve(False, {})
    assert checks.resolve(True, dropped := {}).tolist() == [True, False, False]
    assert dropped == {"reviews.jsonl": {"invalid timestamp": 2}}
