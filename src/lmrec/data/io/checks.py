"""Typed columns and row-level checks over a `RawTable`, vectorised, with `file:line: column` errors.

Each row is attributed to the first check it fails, in the order the checks are added, so per-reason counts add up
to the number of dropped rows, and the row reported on error is the first bad line of the file whatever check
caught it. Cleaning is opt-in (`drop_invalid`) and always logged, so no result is computed on silently altered data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import RawTable

__all__ = ["RowChecks", "describe", "take"]

logger = logging.getLogger(__name__)

# At most 18 digits so every accepted value fits in int64 without an overflow check.
_INT_PATTERN = r"^-?[0-9]{1,18}$"


def describe(value: str) -> str:
    """How a bad value is quoted in a message."""
    return "an empty field" if value == "" else repr(value)


def take(values: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """The kept rows of a column (`keep` None: every row)."""
    return values if keep is None else values[keep]


def _as_text(values: list[Any]) -> list[str]:
    """Delimited files give strings already; JSON values are spelled as they would be in a text file, so one
    parser (and one error message) serves both. A missing JSON field reads as an empty one."""
    if all(type(v) is str for v in values):
        return values
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif v is None:
            out.append("")
        elif isinstance(v, bool) or not isinstance(v, int | float):
            out.append(json.dumps(v))
        else:
            out.append(repr(v) if isinstance(v, float) else str(v))
    return out


def _text(values: Any) -> pa.Array:
    """A column as one Arrow string array: as read (`read_text_table(columnar=True)`), or from a list of strings
    (pyarrow converts a list of str in C; anything else, e.g. JSON values, is spelled by `_as_text` first)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    try:
        array = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = None
    if array is None or array.null_count:
        array = pa.array(_as_text(values), type=pa.string())
    return array


def _objects(array: pa.Array) -> np.ndarray:
    return array.to_numpy(zero_copy_only=False).astype(object, copy=False)


class RowChecks:
    """Row-level problems of one file, collected in check order; `resolve` raises or returns the rows to keep."""

    def __init__(self, raw: RawTable) -> None:
        self.raw = raw
        self.bad = np.zeros(len(raw), dtype=bool)
        self._found: list[tuple[str, str | None, np.ndarray, Callable[[int], str]]] = []
        width = len(raw.header)
        self.add(
            "malformed",
            None,
            raw.n_fields != width,
            lambda i: (
                f"malformed row: {raw.bad_records[i]}"
                if i in raw.bad_records
                else f"malformed row: expected {width} fields ({','.join(raw.header)}), got {raw.n_fields[i]}"
            ),
        )

    def add(self, reason: str, column: str | None, mask: np.ndarray, message: Callable[[int], str]) -> None:
        """Flag the rows in `mask` that no earlier check flagged; `message(i)` explains row i."""
        new = mask & ~self.bad
        if new.any():
            self._found.append((reason, column, new, message))
            self.bad |= new

    @property
    def candidates(self) -> np.ndarray:
        """Rows no check has flagged so far (e.g. the rows a uniqueness check should compare)."""
        return ~self.bad

    def resolve(self, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> np.ndarray | None:
        """Raise for the first bad row, or (with `drop_invalid`) record and log the counts and return the rows to
        keep (None: keep all)."""
        if not self._found:
            return None
        if not drop_invalid:
            # Each row belongs to at most one mask, so the earliest row is unambiguous.
            _, column, mask, message = min(self._found, key=lambda found: int(np.argmax(found[2])))
            index = int(np.argmax(mask))
            text = message(index)
            if index == len(self.raw) - 1 and not self.raw.ends_with_newline:
                # the classic damaged file: a copy or download that stopped in the middle of its last line
                text += " (the file's last line has no line end: was the file cut short?)"
            raise DataValidationError(self.raw.path, int(self.raw.lines[index]), column, text)
        counts: dict[str, int] = {}
        for reason, _, mask, _ in self._found:
            counts[reason] = counts.get(reason, 0) + int(mask.sum())
        total = int(self.bad.sum())
        dropped[self.raw.path.name] = counts
        logger.warning(
            "%s: dropped %d %s (%s)",
            self.raw.path,
            total,
            "row" if total == 1 else "rows",
            ", ".join(f"{count} {reason}" for reason, count in counts.items()),
        )
        return ~self.bad

    # -- typed columns ------------------------------------------------------------------------------------------
    def integers(self, name: str, what: str, low: int | None = None, high: int | None = None) -> np.ndarray:
        """An int64 column; empty and non-integer values are flagged as `invalid <name>`, values outside [low, high]
        (when given) as `<name> out of range`."""
        arr = _text(self.raw.columns[name])
        ok = pc.match_substring_regex(arr, _INT_PATTERN).to_numpy(zero_copy_only=False)
        parsed = pc.cast(pc.if_else(ok, arr, "0") if not ok.all() else arr, pa.int64()).to_numpy()
        self.add(f"invalid {name}", name, ~ok, lambda i: f"expected {what}, got {describe(arr[i].as_py())}")
        if low is not None or high is not None:
            bounds = f"between {low} and {high}" if low is not None and high is not None else ""
            bounds = bounds or (f">= {low}" if low is not None else f"<= {high}")
            self.within(name, parsed, low, high, f"{what} {bounds}")
        return parsed

    def within(self, name: str, values: np.ndarray, low: float | None, high: float | None, expected: str) -> None:
        """Flag parsed `values` outside [low, high] as `<name> out of range` ("expected <expected>, got <value>").

        Separate from parsing so a source can run a plausibility check (a date range) after the reference checks:
        a row naming an unknown item is reported as that, whatever its time."""
        inside = np.ones(len(values), dtype=bool)
        if low is not None:
            inside &= values >= low
        if high is not None:
            inside &= values <= high
        column = self.raw.columns[name]
        self.add(f"{name} out of range", name, ~inside, lambda i: f"expected {expected}, got {column[i]}")

    def numbers(self, name: str, low: float | None = None, high: float | None = None) -> np.ndarray:
        """A float64 column; non-numbers (NaN included) are `invalid <name>`, values outside [low, high] (infinities
        included) `<name> out of range`."""
        arr = _text(self.raw.columns[name])
        try:  # pyarrow parses a column of valid numbers in C; any other value and pandas decides, value by value
            parsed = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            parsed = np.asarray(pd.to_numeric(_objects(arr), errors="coerce"), dtype=np.float64)

        def values(i: int) -> str:
            return arr[i].as_py()

        if low is not None and high is not None:
            expected = f"expected a number between {low} and {high}"
        else:
            expected = "expected a number"
        self.add(f"invalid {name}", name, np.isnan(parsed), lambda i: f"{expected}, got {describe(values(i))}")
        with np.errstate(invalid="ignore"):
            inside = np.isfinite(parsed)
            if low is not None:
                inside &= parsed >= low
            if high is not None:
                inside &= parsed <= high
        self.add(f"{name} out of range", name, ~inside, lambda i: f"{expected}, got {values(i)!r}")
        return parsed

    def choices(self, name: str, allowed: Sequence[str], what: str) -> np.ndarray:
        """A string column whose values must be one of `allowed` (e.g. genre flags "0"/"1")."""
        arr = _text(self.raw.columns[name])
        ok = pc.is_in(arr, value_set=pa.array(list(allowed), type=pa.string())).to_numpy(zero_copy_only=False)
        values = _objects(arr)
        self.add(f"invalid {name}", name, ~ok, lambda i: f"expected {what}, got {describe(values[i])}")
        return values

    def strings(self, name: str, keep: np.ndarray | None) -> pd.Series:
        """The kept rows of a text column, as a str Series (JSON lists and numbers are spelled as JSON)."""
        array = _objects(_text(self.raw.columns[name]))
        return pd.Series(array if keep is None else array[keep], dtype=str)

    # -- relations between rows and tables -----------------------------------------------------------------------
    def known(
        self, column: str, values: np.ndarray, known: np.ndarray, reason: str, message: Callable[[int], str]
    ) -> None:
        """Flag rows whose `values` are not among `known` (an item the item file does not define)."""
        self.add(reason, column, ~np.isin(values, known), message)

    def unique_ids(self, column: str, what: str, low: int | None = None) -> np.ndarray:
        """An integer id column (each >= `low`) whose values must not repeat (an items or users file):
        `duplicate <column>`."""
        ids = self.integers(column, what, low)
        self.unique(
            {column: ids},
            f"duplicate {column}",
            column,
            lambda i, first: f"duplicate {column} {ids[i]} (first defined on line {first})",
        )
        return ids

    def unique(
        self, keys: Mapping[str, np.ndarray], reason: str, column: str, message: Callable[[int, int], str]
    ) -> None:
        """Flag rows whose key repeats an earlier unflagged row's (the first is kept); `message(i, first_line)`."""
        candidates = self.candidates
        frame = pd.DataFrame({name: key[candidates] for name, key in keys.items()})
        repeated = np.zeros(len(candidates), dtype=bool)
        repeated[np.flatnonzero(candidates)[frame.duplicated(keep="first").to_numpy()]] = True

        def explain(i: int) -> str:
            same = candidates.copy()
            for key in keys.values():
                same &= key == key[i]
            return message(i, int(self.raw.lines[int(np.argmax(same))]))

        self.add(reason, column, repeated, explain)
