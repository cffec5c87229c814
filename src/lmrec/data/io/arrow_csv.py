"""The fast path of `read_text_table` for large delimited files (MovieLens ratings, `,` or `::`): pyarrow's parser.

The `csv` module turns every field into a Python str in a Python list: ~60 bytes and ~0.2 us per field, so a
20M-row ratings file takes minutes and ~6 GB before any check. pyarrow parses the same bytes in C into string
arrays (~10 bytes per field). It cannot say on which physical line a record starts, so it is used only where the
answer is certain and both parsers must agree: a file without NUL bytes, for quoted CSV without any quote
character (the parsers differ on malformed quoting, which the strict `csv` module reports), UTF-8 or pure ASCII
(pyarrow reads UTF-8 only), with a multi-character delimiter such as `::` replaced by an unused control byte (the
same left-to-right split as `str.split`), and with exactly one record per physical line
(no blank line), where record i (0-based) starts on line i + 1 + header. Whenever that cannot be shown, or pyarrow
refuses anything (a row of the wrong width, invalid UTF-8), this returns None and the caller takes the exact
`csv`-module path, which produces the usual `file:line: column` errors. The fast path never raises its own.
MovieLens ratings and genome scores hold no quotes; movies and tags files do, and are small enough for `csv`.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

__all__ = ["split_with_arrow"]

_BOM = b"\xef\xbb\xbf"
_CHUNK = 1 << 24


def _is_utf8(data: bytes) -> bool:
    """Whether all of `data` is UTF-8 (pyarrow checks only the columns it converts), in 16 MiB steps so no
    decoded copy of the whole file is ever held."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), _CHUNK):
            decoder.decode(view[start : start + _CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def split_with_arrow(
    data: bytes, fmt: Any, required: Sequence[str], utf8: bool
) -> tuple[list[str], np.ndarray, dict[str, pa.Array]] | None:
    """(header, record start lines, required column -> string array) of a delimited file laid out as `fmt` (a
    `TextFormat`), or None: use the exact path. `utf8`: the file's encoding is UTF-8 (otherwise only a pure-ASCII
    file, which reads the same in every encoding lmrec meets, takes this path)."""
    if utf8:
        data = data.removeprefix(_BOM)
    if b"\x00" in data or not data.strip() or (fmt.quoted and b'"' in data):
        return None
    if not (data.isascii() or (utf8 and _is_utf8(data))):
        return None  # the exact path names the line of the undecodable byte
    delimiter = fmt.delimiter
    first_end = data.find(b"\n")
    first = data[: first_end if first_end >= 0 else len(data)].decode("utf-8").removesuffix("\r")
    if not fmt.header:
        columns = list(fmt.names)
    elif fmt.quoted:
        rows = list(csv.reader(io.StringIO(first), delimiter=delimiter, strict=True))
        if len(rows) != 1:
            return None
        columns = rows[0]
    else:
        if not first.strip():
            return None
        columns = first.split(delimiter)
    if len(set(columns)) != len(columns) or any(name not in columns for name in required):
        return None  # the exact path reports a missing column
    if len(delimiter) > 1:  # pyarrow splits on one byte: stand in an unused control byte for `::`
        spare = next((b for b in (b"\x1f", b"\x1e", b"\x1d") if b not in data), None)
        if spare is None:
            return None
        data, delimiter = data.replace(delimiter.encode(), spare), spare.decode()
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=columns, skip_rows=1 if fmt.header else 0),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char='"' if fmt.quoted else False,
                newlines_in_values=False,
                ignore_empty_lines=True,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in columns},
                include_columns=list(required),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, csv.Error):
        return None
    offset = 1 if fmt.header else 0
    # A skipped blank line (or, in the exact reader, a whitespace-only one) leaves fewer records than lines.
    if table.num_rows != lines - offset:
        return None
    starts = np.arange(offset + 1, offset + 1 + table.num_rows, dtype=np.int64)
    return columns, starts, {name: table.column(name).combine_chunks() for name in required}
