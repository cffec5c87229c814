"""Stream a large JSON-lines file (plain or gzip) into the fields a source needs, with a progress bar.

`lmrec.data.io.readers.read_json_lines` reads a whole file into memory and keeps every record; the Amazon review
dumps run to gigabytes, usually gzipped, and a source needs only a few fields of each record. This reader streams
the file line by line, keeps only the requested fields, and reports the things a large download gets wrong:

- a truncated or corrupt gzip file is an error naming the file (gzip raises `EOFError` at the missing end marker;
  a silent short read would train on part of the data);
- a line that is not a JSON object is a bad record at its physical line, reported or dropped like a malformed CSV
  row by `RowChecks`;
- the older Amazon dumps (2014 metadata, some 2018 mirrors) hold Python dict literals (`{'asin': '...'}`) rather
  than JSON; `syntax="python"` or `"auto"` reads them with `ast.literal_eval`, which only builds literals and
  never runs code (never `eval`);
- a UTF-8 byte-order mark on the first line and CRLF line ends are accepted.

Python's `json` is used (orjson is not a dependency); it parses bytes directly, so no decode step is paid per line.
"""

from __future__ import annotations

import ast
import gzip
import json
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from lmrec.data.io.errors import DataValidationError, check_readable
from lmrec.data.io.readers import RawTable
from lmrec.runtime.progress import progress_bar

__all__ = ["Syntax", "is_gzip", "read_jsonl_fields"]

Syntax = Literal["json", "python", "auto"]
SYNTAXES = ("json", "python", "auto")
_BOM = b"\xef\xbb\xbf"
#: Files larger than this (bytes on disk) get a progress bar; smaller ones read in well under a second.
PROGRESS_MIN_BYTES = 32 << 20
_BLOCK = 8 << 20  # bytes read (after decompression) at a time


def is_gzip(path: Path) -> bool:
    """By name, as the releases name them (`.gz`); a wrongly named file fails with gzip's own error."""
    return Path(path).suffix == ".gz"


_decode_json = json.JSONDecoder().decode


def _parse_json(line: str) -> tuple[Any, str | None]:
    try:
        return _decode_json(line), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _parse_python(line: str) -> tuple[Any, str | None]:
    try:
        return ast.literal_eval(line.strip()), None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        return None, f"not a valid Python literal ({type(exc).__name__}: {exc})"


def _parse_auto(line: str) -> tuple[Any, str | None]:
    record, error = _parse_json(line)
    if error is None:
        return record, None
    record, py_error = _parse_python(line)
    return (record, None) if py_error is None else (None, f"{error}; nor a Python literal")


_PARSERS = {"json": _parse_json, "python": _parse_python, "auto": _parse_auto}


def _decoded(block: bytes) -> list[str | bytes]:
    """A block of whole lines as text; a line that is not UTF-8 stays bytes (reported at its own line)."""
    try:
        return block.decode("utf-8").split("\n")  # split on "\n" only: CR and U+2028 stay inside the record
    except UnicodeDecodeError:
        out: list[str | bytes] = []
        for line in block.split(b"\n"):
            try:
                out.append(line.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(line)
        return out


def _blocks(stream: IO[bytes]) -> Iterator[list[str | bytes]]:
    """The stream's lines, a few MiB at a time: one read, one decode and one split per block, rather than a
    readline per record (a third of the reading time on review files)."""
    rest, first = b"", True
    while True:
        block = stream.read(_BLOCK)
        if not block:
            if rest:
                yield _decoded(rest)
            return
        if rest:
            block = rest + block
        if first:
            block, first = block.removeprefix(_BOM), False
        cut = block.rfind(b"\n")
        if cut < 0:
            rest = block
            continue
        rest = block[cut + 1 :]
        yield _decoded(block[:cut])


def read_jsonl_fields(
    path: Path,
    fields: Sequence[str],
    *,
    syntax: Syntax = "json",
    progress: bool = True,
    description: str | None = None,
) -> RawTable:
    """The `fields` of every record of a JSON-lines file, as columns aligned with physical lines.

    A field a record lacks reads as None (optional fields may be absent); nested values (lists, dicts) are kept as
    parsed. Blank lines hold no record. Raises DataValidationError for a missing, truncated or corrupt file.
    """
    path = Path(path)
    if syntax not in SYNTAXES:
        raise ValueError(f"syntax must be one of {', '.join(SYNTAXES)}, got {syntax!r}")
    parse = _PARSERS[syntax]
    check_readable(path)  # missing, a directory, a link loop, no permission: said before any read
    size = path.stat().st_size
    names = list(fields)
    columns: list[list[Any]] = [[] for _ in names]
    pairs = list(zip(names, columns, strict=True))
    starts: list[int] = []
    bad: dict[int, str] = {}
    number = 0
    show = progress and size >= PROGRESS_MIN_BYTES
    with open(path, "rb") as raw, progress_bar(description or f"reading {path.name}", size, show) as advance:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip(path) else raw
        reported = 0
        try:
            for lines in _blocks(stream):
                for line in lines:
                    number += 1
                    if not line or line.isspace():  # stops at the first non-space character
                        continue
                    if type(line) is bytes:
                        record, error = None, "expected UTF-8 text, got undecodable byte(s)"
                    else:
                        record, error = parse(line)
                        if error is None and type(record) is not dict:
                            error = f"expected a JSON object, got {type(record).__name__}"
                    if error is not None:
                        bad[len(starts)] = error
                        record = {}
                    starts.append(number)
                    for name, column in pairs:
                        column.append(record.get(name))
                position = raw.tell()
                advance(position - reported)
                reported = position
        except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
            what = "truncated or corrupt gzip file" if is_gzip(path) else "unreadable file"
            consumed = raw.tell()  # decompression reads ahead: where in the file it failed, not lines parsed
            where = (
                f"found at the end, after all {size:,} bytes were read: the file is cut short or its trailer damaged"
                if consumed >= size
                else f"found after reading {consumed:,} of {size:,} bytes ({number:,} lines parsed)"
            )
            raise DataValidationError(path, None, None, f"{what} ({exc}; {where}); download it again") from None
    n_fields = np.full(len(starts), len(names), dtype=np.int64)
    if bad:
        n_fields[list(bad)] = 0
    table = dict(zip(names, columns, strict=True))
    return RawTable(path, names, np.asarray(starts, dtype=np.int64), n_fields, bad, table)
