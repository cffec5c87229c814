"""What the Amazon review releases share: how a release spells its records, and how item fields become text.

The 2023 and 2018 releases hold the same things under different keys (`parent_asin`/`asin`, `rating`/`overall`,
`store`/`brand`, `categories`/`category`, milliseconds/seconds); a `Layout` names them, and everything else
(reading, checks, unknown items, duplicates, user review texts) is one code path in `lmrec.data.sources.amazon`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.data.io.checks import RowChecks
from lmrec.data.io.errors import DataValidationError

__all__ = ["EXTENSIONS", "Layout", "find_data_file", "flatten", "string_ids"]

#: File endings tried, in order, for `<Category>` and `meta_<Category>` (2023: .jsonl; 2018: .json.gz).
EXTENSIONS = (".jsonl", ".jsonl.gz", ".json", ".json.gz")


@dataclass(frozen=True)
class Layout:
    """The record keys of one release.

    Attributes:
        user, item, rating, time: review keys of the interaction columns.
        time_unit: "ms" (2023: milliseconds, converted to seconds) or "s" (2018).
        review_title, review_text: review keys of a review's summary and body (the user's review texts).
        meta_item: the item id key of the metadata records.
        fields: item field -> metadata keys; the first key with a non-empty value wins ("a.b" reads key b of
            the dict under key a).
        joiners: how a list field is joined (default " ").
    """

    user: str
    item: str
    rating: str
    time: str
    time_unit: str
    review_title: str
    review_text: str
    meta_item: str
    fields: dict[str, tuple[str, ...]]
    joiners: dict[str, str]

    def meta_keys(self, fields: tuple[str, ...]) -> list[str]:
        """The top-level metadata keys the chosen item fields read."""
        keys = [self.meta_item]
        for name in fields:
            for key in self.fields[name]:
                top = key.split(".", 1)[0]
                if top not in keys:
                    keys.append(top)
        return keys


def _clean(text: str) -> str:
    """Entities decoded (the 2018 metadata is full of `&amp;`) and runs of whitespace collapsed to one space."""
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def flatten(value: Any, joiner: str = " ") -> str:
    """One text for a metadata value: lists joined (nested lists too: 2014 categories), dicts as "key: value; ...".

    A dict serialised as a JSON string (the `details` column of the hub's Arrow tables) is read as the dict.
    """
    kind = type(value)
    if kind is str:
        if value.startswith("{") and value.endswith("}"):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                return flatten(parsed, joiner)
        return _clean(value)
    if value is None:
        return ""
    if kind is list or kind is tuple:
        if all(type(v) is str for v in value):  # the common case, without a call per element
            return joiner.join([c for c in map(_clean, value) if c])
        return joiner.join([part for part in (flatten(v, joiner) for v in value) if part])
    if kind is dict:
        parts = ((_clean(str(k)), flatten(v, ", ")) for k, v in value.items())
        return "; ".join(f"{k}: {v}" for k, v in parts if k and v)
    if isinstance(value, bool | int | float):
        return str(value)
    return _clean(str(value))


def field_values(columns: dict[str, list[Any]], rows: np.ndarray, keys: tuple[str, ...], joiner: str) -> list[str]:
    """The text of one item field for the metadata records `rows`: the first key with a non-empty value."""
    out = [""] * len(rows)
    for key in keys:
        top, _, sub = key.partition(".")
        column = columns[top]
        for j, row in enumerate(rows):
            if out[j]:
                continue
            value = column[row]
            if sub:
                value = value.get(sub) if isinstance(value, dict) else None
            out[j] = flatten(value, joiner)
    return out


def _shown(value: Any) -> str:
    return "no such field" if value is None else f"{type(value).__name__} {value!r}"[:120]


def string_ids(checks: RowChecks, name: str, what: str) -> np.ndarray:
    """An id column of JSON strings (Amazon ids are strings such as "B00YQ6X8EO"; never parsed as numbers, so a
    leading zero stays). Missing, empty or non-string values are flagged as `invalid <name>`."""
    values = checks.raw.columns[name]
    ok = np.fromiter((type(v) is str and v != "" for v in values), dtype=bool, count=len(values))
    checks.add(f"invalid {name}", name, ~ok, lambda i: f"expected {what} (a non-empty string), got {_shown(values[i])}")
    ids = np.empty(len(values), dtype=object)
    ids[:] = values
    return ids


def find_data_file(root: Path, stem: str, explicit: str | None, option: str) -> str:
    """The file name (relative to `root`) of `stem` with one of EXTENSIONS, or `explicit` when given."""
    if explicit:
        if not (root / explicit).is_file():
            raise DataValidationError(root / explicit, None, None, f"file not found (data.source.{option})")
        return explicit
    found = [stem + ext for ext in EXTENSIONS if (root / (stem + ext)).is_file()]
    if len(found) > 1:
        raise DataValidationError(
            root / found[0],
            None,
            None,
            f"{' and '.join(found)} are both here; remove one or name the file to read in data.source.{option}",
        )
    if not found:
        raise DataValidationError(
            root / (stem + EXTENSIONS[0]),
            None,
            None,
            f"file not found: expected {stem} with one of {', '.join(EXTENSIONS)} in {root} "
            f"(or set data.source.{option})",
        )
    return found[0]
