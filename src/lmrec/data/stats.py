"""The figures a reader needs to judge a dataset under a protocol: sizes, activity, text lengths, cold entities.

`lmrec-data stats` prints them and every `lmrec-train` run writes them into its data card (data/card.py). All of it
is a handful of bincounts and quantiles over the processed table; only the token counts call a tokenizer, which
the caller passes in (the data layer knows no encoder; the entry point loads the configured one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lmrec.data.processed import ProcessedData
from lmrec.data.splits import SPLIT_NAMES, TRAIN
from lmrec.runtime.progress import progress_bar

QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
QUANTILE_NAMES = ("min", "p25", "median", "p75", "p90", "p99", "max")

#: Counts the tokens of each text (a list of texts -> one length per text).
TokenCounter = Callable[[Sequence[str]], np.ndarray]


def distribution(values: np.ndarray) -> dict[str, float]:
    """Mean and quantiles (min, p25, median, p75, p90, p99, max) of `values`; zeros for an empty array."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return {"mean": 0.0, **dict.fromkeys(QUANTILE_NAMES, 0.0)}
    points = np.quantile(values, QUANTILES)
    return {"mean": float(values.mean()), **{n: float(p) for n, p in zip(QUANTILE_NAMES, points, strict=True)}}


def word_counts(texts: Sequence[str]) -> np.ndarray:
    """Whitespace-separated words per text: the unit when no tokenizer is configured."""
    return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))


def batched_counts(count: TokenCounter, texts: Sequence[str], batch: int = 4096) -> np.ndarray:
    """`count` over `texts` in batches, with a progress bar when there are many (a large catalogue takes seconds)."""
    parts = []
    with progress_bar("counting item-text tokens", len(texts), enabled=len(texts) > 4 * batch) as advance:
        for start in range(0, len(texts), batch):
            parts.append(np.asarray(count(texts[start : start + batch]), dtype=np.int64))
            advance(len(parts[-1]))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def split_figures(data: ProcessedData) -> dict[str, dict[str, int]]:
    """Per split: interactions, users, items, and the cold ones (users / items with no training interaction)."""
    frame = data.interactions
    codes = frame["split"].to_numpy()
    users, items = frame["user_idx"].to_numpy(), frame["item_idx"].to_numpy()
    train = codes == TRAIN
    warm_users = np.bincount(users[train], minlength=data.num_users) > 0
    warm_items = np.bincount(items[train], minlength=data.num_items) > 0
    figures = {}
    for code, name in SPLIT_NAMES.items():  # bincounts, not np.unique: one pass over the rows, no sort
        rows = codes == code
        in_users = np.bincount(users[rows], minlength=data.num_users) > 0
        in_items = np.bincount(items[rows], minlength=data.num_items) > 0
        figures[name] = {
            "interactions": int(rows.sum()),
            "users": int(in_users.sum()),
            "items": int(in_items.sum()),
            "cold_users": int((in_users & ~warm_users).sum()),
            "cold_items": int((in_items & ~warm_items).sum()),
            "cold_item_interactions": int((~warm_items[items[rows]]).sum()),
        }
    return figures


def dataset_figures(
    data: ProcessedData,
    count_tokens: TokenCounter | None = None,
    tokenizer: str | None = None,
    max_length: int | None = None,
) -> dict[str, Any]:
    """Every figure of the data card (without the protocol options, which the datamodule adds). With a
    tokenizer and the encoder's `max_length`, also the share of item texts the encoder truncates."""
    frame = data.interactions
    n = len(frame)
    texts = data.items["text"].tolist()
    unit = f"tokens ({tokenizer})" if count_tokens is not None else "words"
    lengths = batched_counts(count_tokens, texts) if count_tokens is not None else word_counts(texts)
    per_user = np.bincount(frame["user_idx"].to_numpy(), minlength=data.num_users)
    per_item = np.bincount(frame["item_idx"].to_numpy(), minlength=data.num_items)
    empty = np.fromiter((not t.strip() for t in texts), dtype=bool, count=len(texts))
    return {
        "users": data.num_users,
        "items": data.num_items,
        "interactions": n,
        "density": n / max(1, data.num_users * data.num_items),
        "interactions_per_user": distribution(per_user),
        "interactions_per_item": distribution(per_item),
        "items_without_interactions": int((per_item == 0).sum()),
        "text_length_unit": unit,
        "text_length": distribution(lengths),
        "items_without_text_share": float(empty.mean()) if len(empty) else 0.0,
        **({"text_truncated_share": float((lengths > max_length).mean())} if max_length and len(lengths) else {}),
        "splits": split_figures(data),
        "filters": list(data.filters),
        "dropped_rows": data.dropped,
        "cache_key": data.key,
    }
