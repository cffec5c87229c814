"""Read a delimited text file or a JSON-lines file into string columns aligned with its records and lines.

Every dataset lmrec reads comes through here, so this is where "which line was it?" is answered: each record keeps
the physical line it starts on, and a record that cannot be split keeps its slot (empty in every column) so that
row indices, line numbers and validation masks share one index space. Typing and validation happen afterwards, in
`lmrec.data.io.checks`.

Why not pandas' readers: their fast parsers cannot map a record back to its physical line when a quoted field
spans lines (MovieLens titles), and they coerce or drop malformed rows instead of reporting them. Quoted CSV goes
through the `csv` module (strict mode); unquoted layouts (MovieLens 100K's `|` and tab files, 1M's `::`) are split
per line, which also handles multi-character delimiters that `csv` cannot. Callers that handle Arrow columns
(`columnar=True`) get large files parsed by pyarrow where its result provably equals these readers' (`arrow_csv`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.data.io.arrow_csv import split_with_arrow
from lmrec.data.io.errors import DataValidationError, check_readable

__all__ = ["RawTable", "TextFormat", "read_json_lines", "read_text_table"]


@dataclass(frozen=True)
class TextFormat:
    """How a delimited text file is laid out.

    Attributes:
        delimiter: field separator; one character for quoted CSV, any string for unquoted files (e.g. ``::``).
        encoding: text encoding of the file (MovieLens 100K and 1M are ``latin-1``).
        header: whether the first line names the columns.
        names: the column names when there is no header line.
        quoted: CSV quoting rules (a quoted field may hold the delimiter or span lines); False splits each line
            on the delimiter as it is.
        free_column: unquoted files only: the one column whose values may themselves contain the delimiter (a
            MovieLens 1M/10M title or tag holding ``::``). A line with more fields than columns gives the extra
            ones back to this column, the columns before it taken from the left and those after it from the right,
            so the value is read exactly as written.
    """

    delimiter: str = ","
    encoding: str = "utf-8"
    header: bool = True
    names: tuple[str, ...] = ()
    quoted: bool = True
    free_column: str | None = None

    def __post_init__(self) -> None:
        if not self.delimiter:
            raise ValueError("TextFormat.delimiter must not be empty")
        if self.quoted and len(self.delimiter) != 1:
            raise ValueError(f"quoted CSV needs a one-character delimiter, got {self.delimiter!r}")
        if not self.header and not self.names:
            raise ValueError("a file without a header line needs TextFormat.names")
        if self.free_column is not None and self.quoted:
            raise ValueError("TextFormat.free_column is for unquoted files (quoted CSV quotes such values instead)")


@dataclass
class RawTable:
    """One file's records as columns of raw values (strings, or JSON values for JSON lines).

    Attributes:
        path: the file, as the caller named it (errors print it).
        header: the column names, as in the file's header line (or as given for headerless files).
        lines: int64, the physical line on which each record starts (header = line 1).
        n_fields: int64, how many fields each record had (JSON lines: the width when the record parsed).
        bad_records: record index -> why the record could not be split (bad quoting, invalid JSON).
        columns: required column name -> one value per record (a list; a pyarrow string array when read with
            `read_text_table(..., columnar=True)`).
        ends_with_newline: whether the last line is complete (if not, a bad last record may be a cut-off file).
    """

    path: Path
    header: list[str]
    lines: np.ndarray
    n_fields: np.ndarray
    bad_records: dict[int, str] = field(default_factory=dict)
    columns: dict[str, list[Any]] = field(default_factory=dict)
    ends_with_newline: bool = True

    def __len__(self) -> int:
        return len(self.lines)


def _read_text(path: Path, encoding: str, digests: dict[str, str] | None) -> str:
    return _decode(path, _read_bytes(path, digests), encoding)


def _read_bytes(path: Path, digests: dict[str, str] | None) -> bytes:
    check_readable(path)  # missing, a directory, a link loop, no permission: said, naming the file
    data = path.read_bytes()
    if digests is not None and path.name not in digests:  # hash the bytes already in memory rather than re-reading
        digests[path.name] = hashlib.sha256(data).hexdigest()
    return data


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataValidationError(
            path, line, None, f"expected {_encoding_name(encoding)} text, got undecodable byte(s) ({exc.reason})"
        ) from None
    return text.removeprefix("\ufeff")  # tolerate a byte-order mark from spreadsheet exports


def _encoding_name(encoding: str) -> str:
    return "UTF-8" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


#: Separators a header of one field may really use, when its file is read with another one.
_OTHER_DELIMITERS = (";", "\t", "|", ",", "::")


def _check_required(
    path: Path, header: list[str], required: Sequence[str], *, header_line: bool, delimiter: str = ","
) -> None:
    for column in required:
        if column not in header:
            where = "" if header_line else " (this file has no header line: set its column names)"
            other = next((d for d in _OTHER_DELIMITERS if d != delimiter and d in header[0]), None) if header else None
            if header_line and len(header) == 1 and other is not None:
                where = f" (the header is one field: is the file separated by {other!r} instead of {delimiter!r}?)"
            raise DataValidationError(
                path,
                1,
                column,
                f"missing column {column!r}: expected columns {', '.join(required)}; "
                f"found {', '.join(map(repr, header)) or 'none'}{where}",
            )
        if header.count(column) > 1:  # which of the two holds the values is a guess lmrec does not make
            fields = [str(i + 1) for i, name in enumerate(header) if name == column]
            raise DataValidationError(
                path,
                1,
                column,
                f"column {column!r} appears {len(fields)} times in the header (fields {', '.join(fields)}); "
                "expected each column once",
            )


def read_text_table(
    path: Path,
    fmt: TextFormat,
    required: Sequence[str],
    digests: dict[str, str] | None = None,
    *,
    columnar: bool = False,
) -> RawTable:
    """Split a delimited file into the `required` string columns; records the file's digest into `digests`.

    `columnar`: the columns may come back as pyarrow string arrays instead of lists (`RowChecks` takes both), so
    that a UTF-8 CSV with one record per line is parsed by pyarrow (`arrow_csv`): several times faster and a
    sixth of the memory (also `::` files, and pure-ASCII files in any encoding). Records, lines and errors are the
    same either way.
    """
    path = Path(path)
    data = _read_bytes(path, digests)
    complete = _ends_with_newline(data)
    if columnar:
        fast = split_with_arrow(data, fmt, required, utf8=_encoding_name(fmt.encoding) == "UTF-8")
        if fast is not None:
            header, starts, arrays = fast
            n_fields = np.full(len(starts), len(header), dtype=np.int64)
            return RawTable(path, header, starts, n_fields, {}, dict(arrays), complete)
    text = _decode(path, data, fmt.encoding)
    del data
    if fmt.quoted:
        header, rows, starts, bad = _split_quoted(path, text, fmt, required)
    else:
        header, rows, starts, bad = _split_plain(path, text, fmt, required)
    _check_required(path, header, required, header_line=fmt.header, delimiter=fmt.delimiter)
    width = len(header)
    n_fields = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    blank = [""] * width
    for i in np.flatnonzero(n_fields != width):
        rows[i] = blank
    columns = {name: list(map(operator.itemgetter(header.index(name)), rows)) for name in required}
    return RawTable(path, header, np.asarray(starts, dtype=np.int64), n_fields, bad, columns, complete)


def _ends_with_newline(data: bytes | str) -> bool:
    """Whether the last line is complete: it ends in a line break (or the file is only whitespace)."""
    return data.endswith(b"\n" if isinstance(data, bytes) else "\n") or not data.strip()


def _split_quoted(
    path: Path, text: str, fmt: TextFormat, required: Sequence[str]
) -> tuple[list[str], list[list[str]], list[int], dict[int, str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter, strict=True)
    if fmt.header:
        try:
            header = next(reader)
        except StopIteration:
            raise DataValidationError(
                path, 1, None, f"empty file: expected a header row {fmt.delimiter.join(required)}"
            ) from None
        except csv.Error as exc:
            raise DataValidationError(path, 1, None, f"unreadable header row: {exc}") from None
    else:
        header = list(fmt.names)
    # reader.line_num counts physical lines consumed so far; a record starts on the line after the previous record
    # ended (a quoted field may span several lines).
    rows: list[list[str]] = []
    starts: list[int] = []
    bad: dict[int, str] = {}
    prev_end = reader.line_num
    while True:
        try:
            for row in reader:
                if not row:  # a blank line holds no record (editors often leave one at the end)
                    prev_end = reader.line_num
                    continue
                starts.append(prev_end + 1)
                prev_end = reader.line_num
                rows.append(row)
            break
        except csv.Error as exc:  # bad quoting, NUL byte, oversized field: resume after it
            bad[len(rows)] = f"{exc} (check the quoting on this row)"
            starts.append(prev_end + 1)
            prev_end = reader.line_num
            rows.append([])
    return header, rows, starts, bad


def _split_plain(
    path: Path, text: str, fmt: TextFormat, required: Sequence[str]
) -> tuple[list[str], list[list[str]], list[int], dict[int, str]]:
    # Split on "\n" only: str.splitlines would also break on characters such as U+0085, which latin-1 text holds.
    physical = [line.removesuffix("\r") for line in text.split("\n")]
    first = 0
    if fmt.header:
        if not physical[0].strip():
            raise DataValidationError(
                path, 1, None, f"empty file: expected a header row {fmt.delimiter.join(required)}"
            )
        header, first = physical[0].split(fmt.delimiter), 1
    else:
        header = list(fmt.names)
    rows, starts = [], []
    for number, line in enumerate(physical[first:], start=first + 1):
        if line.strip():
            rows.append(line.split(fmt.delimiter))
            starts.append(number)
    if fmt.free_column is not None and fmt.free_column in header:
        _rejoin_free_column(rows, len(header), header.index(fmt.free_column), fmt.delimiter)
    return header, rows, starts, {}


def _rejoin_free_column(rows: list[list[str]], width: int, at: int, delimiter: str) -> None:
    """Give a row's surplus fields back to column `at` (the delimiter was part of its value)."""
    after = width - at - 1
    for i, row in enumerate(rows):
        if len(row) > width:
            rows[i] = [*row[:at], delimiter.join(row[at : len(row) - after]), *row[len(row) - after :]]


def read_json_lines(
    path: Path, required: Sequence[str], digests: dict[str, str] | None = None, encoding: str = "utf-8"
) -> RawTable:
    """One JSON object per line; `columns` holds each required field's JSON value (None where a record lacks it).

    A line that is not a JSON object is a bad record, reported (or dropped) like a malformed CSV row.
    """
    path = Path(path)
    text = _read_text(path, encoding, digests)
    rows: list[dict[str, Any]] = []
    starts: list[int] = []
    bad: dict[int, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            record, bad[len(rows)] = {}, f"not valid JSON ({exc.msg} at column {exc.colno})"
        if not isinstance(record, dict):
            record, bad[len(rows)] = {}, f"expected a JSON object, got {type(record).__name__}"
        rows.append(record)
        starts.append(number)
    width = len(required)
    n_fields = np.asarray([0 if i in bad else width for i in range(len(rows))], dtype=np.int64)
    columns = {name: [record.get(name) for record in rows] for name in required}
    lines = np.asarray(starts, dtype=np.int64)
    return RawTable(path, list(required), lines, n_fields, bad, columns, _ends_with_newline(text))
