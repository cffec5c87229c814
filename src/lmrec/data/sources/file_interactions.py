"""Interactions from files whose columns come from config: typed rows per file, then the duplicate policy across
files (a RecBole benchmark split is three files; a pair repeated between them is as much a duplicate as within one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.data.io.checks import RowChecks, take
from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import RawTable
from lmrec.data.sources.base import apply_duplicate_policy
from lmrec.data.sources.columns import ids, resolve_rows, show_id, timestamps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InteractionColumns:
    """Which columns of an interactions file hold what; `rating` None: implicit (1.0), `timestamp` None: the
    record's position in the file(s)."""

    user: str
    item: str
    rating: str | None = None
    timestamp: str | None = None
    timestamp_format: str | None = None

    def required(self) -> list[str]:
        return [c for c in (self.user, self.item, self.rating, self.timestamp) if c]


def interaction_rows(
    raw: RawTable,
    unit: str,
    cols: InteractionColumns,
    id_types: tuple[str, str],
    scale: tuple[float, float],
    known: Mapping[str, tuple[np.ndarray, str]],
    drop_invalid: bool,
    dropped: dict[str, dict[str, int]],
    position: int = 0,
) -> pd.DataFrame:
    """One file's interactions (contract columns plus where each row was read), checked in this order: ids, a
    rating on the scale, a timestamp, an item (and user) the item (user) table defines; `known` maps "item" and
    "user" to (ids, file name). `position` numbers the records when there is no timestamp column."""
    checks = RowChecks(raw)
    users = ids(checks, cols.user, id_types[0], "user id")
    items = ids(checks, cols.item, id_types[1], "item id")
    n = len(raw)
    ratings = checks.numbers(cols.rating, *scale) if cols.rating else np.ones(n)
    times = timestamps(checks, cols.timestamp, cols.timestamp_format) if cols.timestamp else position + np.arange(n)
    for what, column, values in (("item", cols.item, items), ("user", cols.user, users)):
        if what in known:
            table_ids, table_file = known[what]
            checks.known(
                column,
                values,
                table_ids,
                f"unknown {what}",
                lambda i, v=values, c=column, f=table_file, w=what: f"unknown {w}: {c} {show_id(v[i])} is not in {f}",
            )
    keep = resolve_rows(checks, unit, drop_invalid, dropped)
    return pd.DataFrame(
        {
            "user_id": take(users, keep),
            "item_id": take(items, keep),
            "rating": take(ratings, keep).astype(np.float32),
            "timestamp": take(np.asarray(times, dtype=np.int64), keep),
            "_file": str(raw.path),
            "_line": take(raw.lines, keep),
            "_unit": unit,
        }
    )


def merge_duplicates(
    frame: pd.DataFrame,
    policy: str,
    drop_invalid: bool,
    dropped: dict[str, dict[str, int]],
    item_column: str,
) -> pd.DataFrame:
    """Apply `data.source.duplicates` to interactions that may come from several files.

    `frame` holds the contract columns plus `_file`, `_line` and `_unit` (where each row was read). `error`
    raises on the first repeated (user, item) pair, naming both places; with `drop_invalid` the repeats are
    dropped and counted instead. The merging policies are the contract's own (`apply_duplicate_policy`).
    """
    repeated = frame.duplicated(["user_id", "item_id"], keep="first").to_numpy()
    if repeated.any() and policy == "error":
        if not drop_invalid:
            i = int(np.argmax(repeated))
            user, item = frame["user_id"].iat[i], frame["item_id"].iat[i]
            j = int(np.argmax((frame["user_id"] == user).to_numpy() & (frame["item_id"] == item).to_numpy()))
            first = f"{frame['_unit'].iat[j]} {frame['_line'].iat[j]}"
            if frame["_file"].iat[j] != frame["_file"].iat[i]:
                first += f" of {Path(frame['_file'].iat[j]).name}"
            raise DataValidationError(
                frame["_file"].iat[i],
                None if frame["_unit"].iat[i] == "row" else int(frame["_line"].iat[i]),
                item_column,
                ("" if frame["_unit"].iat[i] == "line" else f"row {frame['_line'].iat[i]}: ")
                + f"duplicate interaction: user {show_id(user)} already interacted with item {show_id(item)} "
                f"on {first} "
                "(set data.source.duplicates to first, last or sum to merge repeated pairs)",
            )
        for name, count in frame.loc[repeated, "_file"].map(lambda p: Path(p).name).value_counts().items():
            counts = dropped.setdefault(str(name), {})
            counts["duplicate interaction"] = counts.get("duplicate interaction", 0) + int(count)
            log.warning("%s: dropped %d repeated (user, item) pairs (drop_invalid)", name, count)
        frame = frame[~repeated]
    elif policy != "error" and len(frame):  # the contract merges (and adds `weight` under sum, repeats or not)
        # Merges across several files are counted under the first file's name (the split's train file).
        frame = apply_duplicate_policy(frame, policy, Path(frame["_file"].iat[0]), dropped)
    return frame.drop(columns=["_file", "_line", "_unit"]).reset_index(drop=True)
