"""The Amazon review sources: one reviews file and one metadata file per category, JSON lines, plain or gzipped.

`AmazonSource` is the one code path; `amazon2023.Amazon2023` and `amazon2018.Amazon2018` only name their release's
keys (a `Layout`) and file names. Reading order: the metadata first (reviews must name an item it defines, unless
`unknown_items` says otherwise), then the reviews. The catalogue is the items that have at least one kept review
(metadata records nobody reviewed are left out, and counted in the log), as UniSRec and Recformer build it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmrec.data.io.checks import RowChecks
from lmrec.data.io.jsonl import SYNTAXES, read_jsonl_fields
from lmrec.data.io.readers import RawTable
from lmrec.data.sources.amazon_fields import Layout, field_values, find_data_file, string_ids
from lmrec.data.sources.amazon_reviews import count_dropped, resolve_duplicates, user_review_texts
from lmrec.data.sources.base import Source, SourceTables
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

UNKNOWN_ITEMS = ("error", "keep", "drop")
DUPLICATE_ITEMS = ("error", "first")


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"data.source.{option}={value!r}; expected one of {', '.join(allowed)}")
    return value


class AmazonSource(Source):
    """One Amazon review category. Subclasses set `layout` and the file stems.

    Args:
        root: the folder holding the category's two files.
        category: the category as the release spells it in file names (`All_Beauty`, `Video_Games`).
        reviews_file, meta_file: file names inside `root`, when they differ from the release's names.
        item_fields: the item fields to build (a subset of `ITEM_FIELDS`; None: all of them).
        unknown_items: a review of an item the metadata lacks: "error" (file, line, field), "keep" (the item gets
            empty text) or "drop" (removed and counted, as UniSRec does).
        duplicates: a user's second review of the same item: "error", "first"/"last" (the earliest/latest by
            time is kept, file order breaking ties) or "sum" (one row with a `weight`: the number of reviews).
        duplicate_items: a metadata record repeating an item id: "error" or "first" (kept, the rest counted).
        user_reviews: add the user field `reviews`: the user's review titles and texts, oldest first.
        user_review_chars: at most this many characters of `reviews` per user.
        syntax: "json", "python" (Python dict literals, read with ast.literal_eval) or "auto" (JSON, else literal).
        progress: show a progress bar while reading large files.
    """

    layout: ClassVar[Layout]
    ITEM_FIELDS: ClassVar[tuple[str, ...]] = (
        "title", "brand", "categories", "main_category", "features", "description", "details",
    )  # fmt: skip
    item_fields: ClassVar[tuple[str, ...]] = ITEM_FIELDS
    default_template: ClassVar[tuple[str, ...]] = ("{title}", "Brand: {brand}", "Categories: {categories}")
    default_syntax: ClassVar[str] = "json"

    def __init__(
        self,
        root: str | Path,
        category: str,
        reviews_file: str | None = None,
        meta_file: str | None = None,
        item_fields: list[str] | tuple[str, ...] | None = None,
        unknown_items: str = "drop",
        duplicates: str = "first",
        duplicate_items: str = "error",
        user_reviews: bool = False,
        user_review_chars: int = 2000,
        syntax: str | None = None,
        progress: bool = True,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
    ) -> None:
        super().__init__(root, rating_min, rating_max, duplicates=duplicates)
        if not category or not isinstance(category, str):
            raise ConfigError("data.source.category must name an Amazon category, e.g. All_Beauty")
        self.category = category
        self.reviews_file, self.meta_file = reviews_file, meta_file
        chosen = tuple(item_fields) if item_fields is not None else self.ITEM_FIELDS
        unknown = [name for name in chosen if name not in self.ITEM_FIELDS]
        if unknown or not chosen:
            raise ConfigError(
                f"data.source.item_fields={list(chosen)}; expected a non-empty subset of {', '.join(self.ITEM_FIELDS)}"
            )
        self.item_fields = chosen  # type: ignore[misc]  # the instance narrows the class's full list
        self.unknown_items = _choice("unknown_items", unknown_items, UNKNOWN_ITEMS)
        self.duplicate_items = _choice("duplicate_items", duplicate_items, DUPLICATE_ITEMS)
        self.user_reviews = bool(user_reviews)
        if int(user_review_chars) < 1:
            raise ConfigError(f"data.source.user_review_chars={user_review_chars}; expected a positive number")
        self.user_review_chars = int(user_review_chars)
        self.user_fields = ("reviews",) if self.user_reviews else ()  # type: ignore[misc]
        self.syntax = _choice("syntax", syntax or self.default_syntax, SYNTAXES)
        self.progress = bool(progress)

    def template(self) -> tuple[str, ...]:
        """The default template, less the segments whose field `item_fields` left out."""
        kept = tuple(s for s in self.default_template if any(f"{{{f}}}" in s for f in self.item_fields))
        return kept or tuple(f"{{{f}}}" for f in self.item_fields)

    def stems(self) -> tuple[str, str]:
        """The reviews and metadata file names without their ending, as the release names them."""
        return self.category, f"meta_{self.category}"

    def files(self) -> list[str]:
        reviews, meta = self.stems()
        return [
            find_data_file(self.root, reviews, self.reviews_file, "reviews_file"),
            find_data_file(self.root, meta, self.meta_file, "meta_file"),
        ]

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "category": self.category,
            "item_fields": list(self.item_fields),
            "unknown_items": self.unknown_items,
            "duplicate_items": self.duplicate_items,
            "user_reviews": self.user_reviews,
            "user_review_chars": self.user_review_chars,
            "syntax": self.syntax,
        }

    def read(self, drop_invalid: bool = False) -> SourceTables:
        reviews_name, meta_name = self.files()
        dropped: dict[str, dict[str, int]] = {}
        meta, meta_ids, meta_rows = self._metadata(self.root / meta_name, drop_invalid, dropped)
        catalogue = pd.Index(meta_ids[meta_rows])
        frame, raw = self._reviews(self.root / reviews_name, catalogue, meta_name, drop_invalid, dropped)
        users = None
        if self.user_reviews:
            keys = (self.layout.review_title, self.layout.review_text)
            users = user_review_texts(frame, raw, keys, self.user_review_chars)
        frame = resolve_duplicates(frame, raw, self.duplicates, self.layout.item, drop_invalid, dropped)
        items = self._items(frame, meta, meta_ids, meta_rows, catalogue, meta_name)
        if users is not None:
            users = users[users["user_id"].isin(frame["user_id"].unique())].reset_index(drop=True)
        return SourceTables(interactions=frame.drop(columns="_row"), items=items, users=users, dropped=dropped)

    # -- metadata ------------------------------------------------------------------------------------------------
    def _metadata(
        self, path: Path, drop_invalid: bool, dropped: dict[str, dict[str, int]]
    ) -> tuple[RawTable, np.ndarray, np.ndarray]:
        key = self.layout.meta_item
        keys = self.layout.meta_keys(self.item_fields)
        raw = read_jsonl_fields(path, keys, syntax=self.syntax, progress=self.progress)
        checks = RowChecks(raw)
        ids = string_ids(checks, key, "an item id")
        if self.duplicate_items == "error":
            checks.unique(
                {"item": ids},
                "duplicate item",
                key,
                lambda i, first: (
                    f"duplicate item {ids[i]!r} (first defined on line {first}); "
                    "set data.source.duplicate_items=first to keep the first record"
                ),
            )
        keep = checks.resolve(drop_invalid, dropped)
        rows = np.arange(len(raw)) if keep is None else np.flatnonzero(keep)
        repeated = pd.Series(ids[rows]).duplicated().to_numpy()
        if repeated.any():
            n = int(repeated.sum())
            log.warning("%s: %d repeated item records; the first record of each item is kept", path, n)
            count_dropped(dropped, path.name, "duplicate item", n)
            rows = rows[~repeated]
        return raw, ids, rows

    def _items(
        self,
        frame: pd.DataFrame,
        meta: RawTable,
        meta_ids: np.ndarray,
        meta_rows: np.ndarray,
        catalogue: pd.Index,
        meta_name: str,
    ) -> pd.DataFrame:
        """The reviewed items with their text fields (unknown items kept by the policy have empty fields)."""
        position = catalogue.get_indexer(pd.unique(frame["item_id"]))
        used = np.sort(position[position >= 0])
        rows = meta_rows[used]
        if len(meta_rows) > len(used):
            unused = len(meta_rows) - len(used)
            log.info("%s: %d items have no kept review; left out of the catalogue", meta_name, unused)
        table: dict[str, Any] = {"item_id": meta_ids[rows]}
        for name in self.item_fields:
            table[name] = field_values(meta.columns, rows, self.layout.fields[name], self.layout.joiners.get(name, " "))
        items = pd.DataFrame(table)
        missing = pd.unique(frame["item_id"])[position < 0]
        if len(missing):
            empty = {"item_id": missing, **{name: [""] * len(missing) for name in self.item_fields}}
            items = pd.concat([items, pd.DataFrame(empty)], ignore_index=True)
        for name in self.item_fields:
            items[name] = items[name].astype(str)
        return items

    # -- reviews -------------------------------------------------------------------------------------------------
    def _reviews(
        self, path: Path, catalogue: pd.Index, meta_name: str, drop_invalid: bool, dropped: dict[str, dict[str, int]]
    ) -> tuple[pd.DataFrame, RawTable]:
        lay = self.layout
        keys = [lay.user, lay.item, lay.rating, lay.time]
        if self.user_reviews:
            keys += [k for k in (lay.review_title, lay.review_text) if k not in keys]
        raw = read_jsonl_fields(path, keys, syntax=self.syntax, progress=self.progress)
        checks = RowChecks(raw)
        users = string_ids(checks, lay.user, "a user id")
        items = string_ids(checks, lay.item, "an item id")
        ratings = checks.numbers(lay.rating, self.rating_scale.low, self.rating_scale.high)
        unit = "milliseconds" if lay.time_unit == "ms" else "seconds"
        times = checks.integers(lay.time, f"an integer Unix timestamp in {unit}")
        known = catalogue.get_indexer(items) >= 0
        if self.unknown_items == "error":
            checks.add(
                "unknown item",
                lay.item,
                ~known,
                lambda i: (
                    f"unknown item: {lay.item} {items[i]!r} is not in {meta_name} "
                    "(data.source.unknown_items=keep or drop accepts such reviews)"
                ),
            )
        keep = checks.resolve(drop_invalid, dropped)
        rows = np.arange(len(raw)) if keep is None else np.flatnonzero(keep)
        unknown = ~known[rows]
        if unknown.any():
            n = int(unknown.sum())
            if self.unknown_items == "drop":
                log.warning("%s: dropped %d reviews of items missing from %s", path, n, meta_name)
                count_dropped(dropped, path.name, "unknown item", n)
                rows = rows[~unknown]
            else:
                log.warning("%s: %d reviews of items missing from %s kept, with empty item text", path, n, meta_name)
        seconds = times[rows] // 1000 if lay.time_unit == "ms" else times[rows]
        frame = pd.DataFrame(
            {
                "user_id": users[rows],
                "item_id": items[rows],
                "rating": ratings[rows].astype(np.float32),
                "timestamp": seconds.astype(np.int64),
                "_row": rows,
            }
        )
        return frame, raw
