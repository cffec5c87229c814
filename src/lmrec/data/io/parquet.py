"""Read the required columns of a Parquet file into a `RawTable`, so Parquet goes through the same `RowChecks`.

Parquet is typed already, but a dataset's ids, ratings and timestamps still need the same checks as a text file's
(an id that is null, a rating off the scale, an unknown item), and one validator keeps one set of messages. So
scalar columns are spelled as text (pyarrow's cast, vectorised; nulls stay None and read as empty fields),
timestamp-typed columns become integer Unix seconds, and nested values (lists, structs) stay Python objects for the
caller to spell. Parquet has no lines: `RawTable.lines` holds the row number (1 = the first row), and callers say
"row" rather than "line" in their messages (`lmrec.data.sources.columns.resolve_rows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lmrec.data.io.errors import DataValidationError, check_readable
from lmrec.data.io.readers import RawTable

__all__ = ["read_parquet_table"]


def _values(column: pa.ChunkedArray) -> list[Any]:
    kind = column.type
    if pa.types.is_timestamp(kind):
        seconds = pc.cast(column, pa.timestamp("s", tz=kind.tz), safe=False)
        return pc.cast(pc.cast(seconds, pa.int64()), pa.string()).to_pylist()
    if pa.types.is_dictionary(kind):
        column = pc.cast(column, kind.value_type)
        kind = kind.value_type
    scalar = (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_date(kind)
    )
    return pc.cast(column, pa.string()).to_pylist() if scalar else column.to_pylist()


def read_parquet_table(path: Path, required: Sequence[str]) -> RawTable:
    """The `required` columns of a Parquet file; a missing file or column, or an unreadable file, raises."""
    path = Path(path)
    check_readable(path)
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as err:
        raise DataValidationError(path, None, None, f"not a readable Parquet file ({err})") from None
    for column in required:
        if column not in names:
            raise DataValidationError(
                path,
                None,
                column,
                f"missing column {column!r}: expected columns {', '.join(required)}; "
                f"found {', '.join(map(repr, names))}",
            )
    try:
        table = pq.read_table(path, columns=list(dict.fromkeys(required)))
    except (pa.ArrowException, OSError) as err:
        raise DataValidationError(path, None, None, f"not a readable Parquet file ({err})") from None
    n = table.num_rows
    columns = {name: _values(table.column(name)) for name in required}
    return RawTable(
        path,
        list(required),
        np.arange(1, n + 1, dtype=np.int64),
        np.full(n, len(required), dtype=np.int64),
        {},
        columns,
    )
