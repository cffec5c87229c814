"""The protocol's filters, applied to a source's tables before indexing: implicit feedback, text filters, k-core.

Each filter returns the kept rows and a `FilterStep` that says how many interactions, users and items it removed;
`build_processed` logs every step and keeps the list, which goes into the cache entry, run.json and the data card,
so nothing is dropped without a count. Everything is vectorised (numpy / pandas), never a loop over rows: the
k-core loop runs once per round of removal, each round a few bincounts over the kept rows.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class FilterStep:
    """What one filter removed: interactions (rows), users left without any, and items (the implicit filter: items
    left without interactions, which stay in the catalogue; the text filter and a k-core with an item k: items
    removed from the catalogue)."""

    name: str
    rows: int
    users: int
    items: int
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _step(
    name: str, before: pd.DataFrame, after: pd.DataFrame, items_removed: int | None = None, detail: str = ""
) -> FilterStep:
    users = before["user_id"].nunique() - after["user_id"].nunique()
    items = before["item_id"].nunique() - after["item_id"].nunique() if items_removed is None else items_removed
    step = FilterStep(name, len(before) - len(after), int(users), int(items), detail)
    log.info(
        "%s%s: removed %d interactions, %d users, %d items; %d interactions left",
        name,
        f" ({detail})" if detail else "",
        step.rows,
        step.users,
        step.items,
        len(after),
    )
    return step


def implicit_feedback(interactions: pd.DataFrame, threshold: float | None) -> tuple[pd.DataFrame, FilterStep | None]:
    """Keep ratings >= `threshold` as the positives of implicit feedback (None: every interaction is one)."""
    if threshold is None:
        return interactions, None
    kept = interactions[interactions["rating"].to_numpy() >= float(threshold)]
    return kept, _step("implicit", interactions, kept, detail=f"rating >= {threshold}")


def text_filter(
    interactions: pd.DataFrame, items: pd.DataFrame, min_words: int, require_text: bool
) -> tuple[pd.DataFrame, pd.DataFrame, FilterStep | None]:
    """Drop items whose rendered text is empty (`require_text`, as UniSRec drops items without metadata) or has
    fewer than `min_words` whitespace-separated words, with their interactions. `items` holds a `text` column."""
    if not require_text and min_words <= 0:
        return interactions, items, None
    words = items["text"].str.split().str.len().fillna(0).to_numpy()
    keep = words >= max(int(min_words), 1 if require_text else 0)
    kept_items = items[keep]
    kept = interactions[interactions["item_id"].isin(kept_items["item_id"])]
    detail = ", ".join(
        part
        for part in (("no text" if require_text else ""), (f"< {min_words} words" if min_words > 0 else ""))
        if part
    )
    return kept, kept_items, _step("text", interactions, kept, items_removed=int((~keep).sum()), detail=detail)


def kcore(interactions: pd.DataFrame, user_k: int, item_k: int) -> tuple[pd.DataFrame, FilterStep | None]:
    """Iterative k-core: remove users with < `user_k` and items with < `item_k` interactions until none is left.

    Removing a user can push an item under its k and back, so one pass is not enough; the loop stops when a
    round removes nothing, so every user and item of the result meets its k.
    """
    if user_k <= 1 and item_k <= 1:
        return interactions, None
    users = pd.factorize(interactions["user_id"])[0]
    items = pd.factorize(interactions["item_id"])[0]
    keep = np.ones(len(interactions), dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        user_counts = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        item_counts = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        ok = keep & (user_counts[users] >= user_k) & (item_counts[items] >= item_k)
        if np.array_equal(ok, keep):
            break
        keep = ok
    kept = interactions[keep]
    return kept, _step("kcore", interactions, kept, detail=f"user >= {user_k}, item >= {item_k}, {rounds} rounds")


def summarize_steps(steps: list[FilterStep | None]) -> list[dict]:
    """The steps that ran, as plain dicts for JSON."""
    return [step.as_dict() for step in steps if step is not None]
