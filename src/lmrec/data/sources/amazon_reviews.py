"""Reviews of the Amazon sources after the checks: repeated (user, item) reviews, and each user's review texts.

Both work on the frame `AmazonSource._reviews` builds (the contract's interaction columns plus `_row`, the
record's index in the reviews file, so that an error names its line and a review finds its text).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import RawTable
from lmrec.data.sources.amazon_fields import flatten
from lmrec.data.sources.base import apply_duplicate_policy

log = logging.getLogger(__name__)

REVIEW_SEPARATOR = " | "


def count_dropped(dropped: dict[str, dict[str, int]], name: str, reason: str, n: int) -> None:
    """Add `n` rows removed for `reason` to the per-file counts a source reports (`SourceTables.dropped`)."""
    counts = dropped.setdefault(name, {})
    counts[reason] = counts.get(reason, 0) + n


def resolve_duplicates(
    frame: pd.DataFrame,
    raw: RawTable,
    policy: str,
    item_key: str,
    drop_invalid: bool,
    dropped: dict[str, dict[str, int]],
) -> pd.DataFrame:
    """Apply `data.source.duplicates` to a user's repeated reviews of one item (real categories hold some: a
    product's variants share one parent item). "error" raises at the second review's line, naming the first (with
    `drop_invalid` the repeats are dropped and counted); the other policies are the shared
    `apply_duplicate_policy` (first / last by time, or sum into a `weight`), which counts what it merges."""
    if policy != "error":
        return apply_duplicate_policy(frame, policy, raw.path, dropped)
    repeated = frame.duplicated(["user_id", "item_id"], keep="first").to_numpy()
    if not repeated.any():
        return frame
    if not drop_invalid:
        i = int(np.argmax(repeated))
        user, item = frame["user_id"].iat[i], frame["item_id"].iat[i]
        first = frame["_row"][(frame["user_id"] == user) & (frame["item_id"] == item)].iat[0]
        raise DataValidationError(
            raw.path,
            int(raw.lines[frame["_row"].iat[i]]),
            item_key,
            f"duplicate review: user {user!r} already reviewed {item!r} on line {int(raw.lines[first])}; "
            "set data.source.duplicates to first, last or sum",
        )
    n = int(repeated.sum())
    log.warning("%s: dropped %d repeated (user, item) reviews (data.drop_invalid)", raw.path, n)
    count_dropped(dropped, raw.path.name, "duplicate review", n)
    return frame[~repeated].reset_index(drop=True)


def user_review_texts(frame: pd.DataFrame, raw: RawTable, keys: tuple[str, str], chars: int) -> pd.DataFrame:
    """Each user's review titles and texts, oldest first, cut at `user_review_chars`.

    These are texts of every review the file holds, the held-out ones included: a user tower that reads them
    sees the text of its validation and test reviews unless the split filters them (see docs).
    """
    title, text = raw.columns[keys[0]], raw.columns[keys[1]]
    rows = frame["_row"].to_numpy()
    parts = [". ".join(p for p in (flatten(title[r]), flatten(text[r])) if p) for r in rows]
    reviews = pd.DataFrame({"user_id": frame["user_id"], "t": frame["timestamp"], "_row": rows, "text": parts})
    reviews = reviews[reviews["text"] != ""].sort_values(["t", "_row"], kind="stable")
    joined = reviews.groupby("user_id", sort=False)["text"].agg(REVIEW_SEPARATOR.join)
    users = pd.DataFrame({"user_id": pd.unique(frame["user_id"])})
    users["reviews"] = users["user_id"].map(joined).fillna("").map(lambda s: s[:chars]).astype(str)
    return users
