"""The streaming JSON-lines reader: physical line numbers across read blocks, gzip, BOM, CRLF, literals, progress."""

from __future__ import annotations

import gzip
import json
import logging

import pytest

from lmrec.data.io import jsonl
from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.jsonl import read_jsonl_fields

RECORDS = [{"id": f"r{i}", "n": i, "tags": ["a", "é"][: i % 3], "nested": {"k": i}} for i in range(40)]


def text(records, end="\n"):
    return "".join(json.dumps(r, ensure_ascii=False) + end for r in records)


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_lines_keep_their_physical_numbers_across_blocks(tmp_path, monkeypatch, block):
    monkeypatch.setattr(jsonl, "_BLOCK", block)  # records straddle block boundaries, multi-byte characters too
    body = text(RECORDS[:20]) + "\n   \n" + text(RECORDS[20:], end="\r\n").rstrip("\r\n")  # blank lines, no final EOL
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbf" + body.encode()))
    raw = read_jsonl_fields(path, ["id", "tags", "missing"], progress=False)
    assert raw.columns["id"] == [r["id"] for r in RECORDS]
    assert raw.columns["tags"] == [r["tags"] for r in RECORDS]
    assert raw.columns["missing"] == [None] * 40
    assert raw.lines.tolist() == list(range(1, 21)) + list(range(23, 43))
    assert raw.bad_records == {} and raw.n_fields.tolist() == [3] * 40


def test_bad_lines_are_bad_records_at_their_line(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "_BLOCK", 16)
    path = tmp_path / "x.jsonl"
    path.write_bytes(
        text(RECORDS[:2]).encode() + b'{"id": "\xff"}\n' + b"{bad\n" + b"7\n" + text(RECORDS[2:3]).encode()
    )
    raw = read_jsonl_fields(path, ["id"], progress=False)
    assert raw.lines.tolist() == [1, 2, 3, 4, 5, 6]
    assert raw.columns["id"] == ["r0", "r1", None, None, None, "r2"]
    assert raw.bad_records[2].startswith("expected UTF-8 text")
    assert raw.bad_records[3].startswith("not valid JSON (Expecting property name")
    assert raw.bad_records[4] == "expected a JSON object, got int"
    assert raw.n_fields.tolist() == [1, 1, 0, 0, 0, 1]


def test_python_literals_only_when_asked(tmp_path):
    path = tmp_path / "meta.json"
    path.write_text("{'asin': 'a', 'price': 1.5, 'ok': True, 'sub': ('x', None)}\n" + json.dumps({"asin": "b"}) + "\n")
    assert read_jsonl_fields(path, ["asin"], syntax="json", progress=False).bad_records.keys() == {0}
    for syntax in ("python", "auto"):
        raw = read_jsonl_fields(path, ["asin", "ok", "sub"], syntax=syntax, progress=False)
        assert raw.columns == {"asin": ["a", "b"], "ok": [True, None], "sub": [("x", None), None]}
    with pytest.raises(ValueError, match="syntax must be one of"):
        read_jsonl_fields(path, ["asin"], syntax="yaml")


def test_missing_file_and_progress_reports(tmp_path, monkeypatch, caplog):
    with pytest.raises(DataValidationError, match=r"nope\.jsonl: file not found"):
        read_jsonl_fields(tmp_path / "nope.jsonl", ["id"])
    monkeypatch.setattr(jsonl, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl, "_BLOCK", 256)
    path = tmp_path / "x.jsonl"
    path.write_text(text(RECORDS))
    with caplog.at_level(logging.INFO, logger="lmrec.runtime.progress"):
        raw = read_jsonl_fields(path, ["id"], description="reading reviews")
    assert len(raw) == 40
    assert f"reading reviews: {path.stat().st_size}/{path.stat().st_size}" in caplog.text  # a log, off a terminal


def test_a_damaged_gzip_file_says_where_the_damage_was_found(tmp_path):
    """Decompression reads ahead, so the message gives the place in the file, not a count of lines parsed."""
    whole = gzip.compress(text([{"id": i, "pad": str(i) * 20} for i in range(200_000)]).encode(), mtime=0)
    trailer = tmp_path / "trailer.jsonl.gz"
    trailer.write_bytes(whole[:-8] + bytes(8))  # CRC and length zeroed: every byte is read before it fails
    with pytest.raises(DataValidationError, match=rf"found at the end, after all {len(whole):,} bytes were read"):
        read_jsonl_fields(trailer, ["id"])
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])  # a download that stopped half-way
    with pytest.raises(DataValidationError, match=rf"ended before .* all {len(whole) // 2:,} bytes were read: the"):
        read_jsonl_fields(cut, ["id"])
