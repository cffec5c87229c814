"""Typed columns shared by the sources whose layout comes from config (generic files, RecBole atomic files).

A fixed-format source knows its columns and their types; these sources learn them from `data.source`, so the same
steps serve both: read one file of a given format (`FileSpec`), type its ids as int or str (`id_type`), spell text
fields (JSON lists joined with ", "), parse timestamps, build the items/users tables, and merge or refuse repeated
(user, item) pairs across one or several files. Every problem is reported through `RowChecks` (file, line or
Parquet row, column), so the messages match the other sources'.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lmrec.data.io.checks import RowChecks, describe, take
from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.parquet import read_parquet_table
from lmrec.data.io.readers import RawTable, TextFormat, read_json_lines, read_text_table
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "parquet", "jsonl")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
EXTENSIONS |= {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
ID_TYPES = ("int", "str", "auto")
#: A canonical integer: no sign on zero, no leading zeros, at most 18 digits, so text -> int -> text is exact
#: (an id such as "0439" stays a string under id_type=auto).
_CANONICAL_INT = r"^(0|-?[1-9][0-9]{0,17})$"
_INT = r"^-?[0-9]{1,18}$"


@dataclass(frozen=True)
class FileSpec:
    """One input file and how it is laid out (`format` from the extension when not given)."""

    file: str
    format: str
    separator: str
    encoding: str = "utf-8"
    header: bool = True
    names: tuple[str, ...] = ()
    quoted: bool = True

    @classmethod
    def parse(cls, key: str, file: Any, options: Mapping[str, Any]) -> FileSpec:
        """Check the layout options of config node `key` (e.g. data.source.items) and fill the defaults."""
        if not isinstance(file, str) or not file:
            raise ConfigError(f"{key}.file={file!r}: expected a file name inside data.source.root")
        fmt = options.get("format") or EXTENSIONS.get(Path(file).suffix.lower())
        if fmt not in FORMATS:
            raise ConfigError(
                f"{key}.format={options.get('format')!r} for {file}: expected one of {', '.join(FORMATS)} "
                f"(the extensions {', '.join(EXTENSIONS)} are recognised without it)"
            )
        separator = options.get("separator") or ("\t" if fmt == "tsv" else ",")
        header = bool(options.get("header", True))
        names = tuple(options.get("names") or ())
        if not header and not names and fmt in ("csv", "tsv"):
            raise ConfigError(f"{key}.header=false: set {key}.names, the column names of {file} in order")
        quoted = bool(options.get("quoted", True))
        if quoted and len(separator) != 1 and fmt in ("csv", "tsv"):
            raise ConfigError(f"{key}.separator={separator!r}: quoted files need one character; set quoted: false")
        return cls(file, fmt, separator, str(options.get("encoding") or "utf-8"), header, names, quoted)

    @property
    def unit(self) -> str:
        """What a record's number counts in messages: a physical line, or a Parquet row."""
        return "row" if self.format == "parquet" else "line"

    def read(self, root: Path, required: Sequence[str]) -> RawTable:
        path = Path(root) / self.file
        required = list(dict.fromkeys(required))
        if self.format == "parquet":
            return read_parquet_table(path, required)
        if self.format == "jsonl":
            return read_json_lines(path, required, encoding=self.encoding)
        fmt = TextFormat(self.separator, self.encoding, self.header, self.names, self.quoted)
        return read_text_table(path, fmt, required)


def check_id_type(key: str, id_type: str) -> str:
    if id_type not in ID_TYPES:
        raise ConfigError(f"{key}={id_type!r}; expected one of {', '.join(ID_TYPES)}")
    return id_type


def spell(value: Any) -> str:
    """A field's value as text: lists (JSON arrays, Parquet lists) joined with ", ", nulls and NaN empty."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(s for s in map(spell, value) if s)
    if isinstance(value, bool | dict):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def show_id(value: Any) -> str:
    """An id in a message: 42 or 'B0042' (numpy scalars as Python values)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def texts(raw: RawTable, column: str) -> np.ndarray:
    values = raw.columns[column]
    return np.asarray(values if all(type(v) is str for v in values) else [spell(v) for v in values], dtype=object)


def resolve_rows(checks: RowChecks, unit: str, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> Any:
    """`RowChecks.resolve`, with a Parquet error naming its row instead of a line."""
    try:
        return checks.resolve(drop_invalid, dropped)
    except DataValidationError as err:
        if unit == "line":
            raise
        raise DataValidationError(err.path, None, err.column, f"row {err.line}: {err.message}") from None


def choose_id_type(raw: RawTable, column: str, id_type: str) -> str:
    """`auto`: int when every non-empty id in the column is a canonical integer, else str."""
    if id_type != "auto":
        return id_type
    values = pa.array(texts(raw, column).tolist(), type=pa.string())
    present = pc.not_equal(values, "")
    canonical = pc.match_substring_regex(values, _CANONICAL_INT)
    return "int" if pc.all(pc.or_(canonical, pc.invert(present))).as_py() and len(values) else "str"


def ids(checks: RowChecks, column: str, id_type: str, what: str) -> np.ndarray:
    """An id column: int64 for `int`, str for `str` (an empty id is an error either way)."""
    if id_type == "int":
        return checks.integers(column, f"an integer {what} (set id_type: str for text ids)")
    values = texts(checks.raw, column)
    checks.add(f"invalid {column}", column, values == "", lambda i: f"expected a {what}, got an empty field")
    return values


def timestamps(checks: RowChecks, column: str, time_format: str | None) -> np.ndarray:
    """int64 Unix seconds: integers (an integral float such as RecBole's "874965758.0" too), or dates read with
    `time_format` ("iso", or a strftime pattern such as "%Y-%m-%d %H:%M:%S")."""
    values = texts(checks.raw, column)
    if time_format:
        fmt = "ISO8601" if time_format == "iso" else time_format
        try:
            parsed = pd.to_datetime(pd.Series(values, dtype=object), format=fmt, errors="coerce", utc=True)
        except ValueError as err:
            raise ConfigError(f"timestamp_format={time_format!r} is not a date format: {err}") from None
        bad = parsed.isna().to_numpy()
        seconds = np.where(bad, 0, (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype(np.int64)
        what = f"a date in the format {time_format}"
    else:
        arr = pa.array(values.tolist(), type=pa.string())
        is_int = pc.match_substring_regex(arr, _INT).to_numpy(zero_copy_only=False)
        seconds = pc.cast(pc.if_else(is_int, arr, "0"), pa.int64()).to_numpy().copy()
        floats = np.asarray(pd.to_numeric(values, errors="coerce"), dtype=np.float64)
        with np.errstate(invalid="ignore"):
            integral = ~is_int & np.isfinite(floats) & (floats == np.round(floats)) & (np.abs(floats) < 2.0**62)
        seconds[integral] = floats[integral].astype(np.int64)
        bad = ~(is_int | integral)
        what = "an integer Unix timestamp (or set timestamp_format for dates)"
    checks.add(f"invalid {column}", column, bad, lambda i: f"expected {what}, got {describe(values[i])}")
    return seconds


def entity_table(
    raw: RawTable,
    id_column: str,
    id_type: str,
    fields: Mapping[str, str],
    what: str,
    unit: str,
    drop_invalid: bool,
    dropped: dict[str, dict[str, int]],
) -> pd.DataFrame:
    """An items or users table: `<what>_id` (unique) plus one str column per field (field name -> column)."""
    checks = RowChecks(raw)
    values = ids(checks, id_column, id_type, f"{what} id")
    checks.unique(
        {id_column: values},
        f"duplicate {id_column}",
        id_column,
        lambda i, first: f"duplicate {what} id {show_id(values[i])} (first defined on {unit} {first})",
    )
    keep = resolve_rows(checks, unit, drop_invalid, dropped)
    return pd.DataFrame(
        {f"{what}_id": take(values, keep), **{name: take(texts(raw, col), keep) for name, col in fields.items()}}
    )
