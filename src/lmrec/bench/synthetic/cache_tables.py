"""Processed-data tables (what lmrec's cache stores) of MovieLens-1M's and -20M's sizes, for the cache-format benchmark.

Parquet's encodings and Arrow's raw buffers are sensitive to dtypes, row order and value skew, so the tables have
the dtypes lmrec stores (interactions user_idx int64, item_idx int64, rating float32, timestamp int64, split int8
with random 8:1:1 codes; users user_id int64; items item_id int64 and a 60-120 character text, a few with accents),
are ordered by user then item as the MovieLens files are, and draw users and items with skewed popularity (every
user and item appears): sizes and speeds then carry over to the real cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SHAPES = {
    "1m": {"interactions": 1_000_209, "users": 6_040, "items": 3_706, "half_stars": False},
    "20m": {"interactions": 20_000_263, "users": 138_493, "items": 26_744, "half_stars": True},
}
WORDS = (
    "night",
    "love",
    "return",
    "dark",
    "city",
    "story",
    "last",
    "man",
    "girl",
    "war",
    "king",
    "summer",
    "lost",
    "Adventure",
    "Animation",
    "Comedy",
    "Drama",
    "Sci-Fi",
    "pixar",
    "quirky",
    "Misérables",
    "Amélie",
)


def scaled(shape: str, scale: float = 1.0) -> dict[str, Any]:
    """The sizes of `shape`, with fewer interactions on fewer users and items when scale < 1 (both by the square
    root of the scale: about the same density)."""
    sizes = dict(SHAPES[shape])
    if scale != 1.0:
        sizes["interactions"] = int(sizes["interactions"] * scale)
        sizes["users"] = max(int(sizes["users"] * scale**0.5), 20)
        sizes["items"] = max(int(sizes["items"] * scale**0.5), 40)
    return sizes


def make_tables(sizes: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """{"interactions", "users", "items"}: pandas frames of the given sizes (see the module docstring)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n, users, items = sizes["interactions"], sizes["users"], sizes["items"]
    user_w = (np.arange(users) + 10.0) ** -0.5
    item_w = (np.arange(items) + 10.0) ** -0.8
    user = np.concatenate([np.arange(users), rng.choice(users, n - users, p=user_w / user_w.sum())])
    item = np.concatenate([np.arange(items), rng.choice(items, n - items, p=item_w / item_w.sum())])
    item = rng.permutation(items)[rng.permutation(item)]  # popularity unrelated to index, items unrelated to users
    order = np.lexsort((item, user))
    stars = rng.integers(1, 11, n) / 2 if sizes["half_stars"] else rng.integers(1, 6, n)
    interactions = pd.DataFrame(
        {
            "user_idx": user[order].astype(np.int64),
            "item_idx": item[order].astype(np.int64),
            "rating": stars.astype(np.float32),
            "timestamp": 789_652_009 + rng.integers(0, 638_000_000, n, dtype=np.int64),
            "split": rng.choice(3, n, p=[0.8, 0.1, 0.1]).astype(np.int8),
        }
    )
    words = np.array(WORDS, dtype=object)
    texts = [
        " ".join(words[rng.integers(0, len(WORDS), 30)])[:length].rstrip() for length in rng.integers(60, 121, items)
    ]
    item_ids = np.sort(rng.choice(items * 5, items, replace=False)).astype(np.int64) + 1
    return {
        "interactions": interactions,
        "users": pd.DataFrame({"user_id": np.arange(1, users + 1, dtype=np.int64)}),
        "items": pd.DataFrame({"item_id": item_ids, "text": texts}),
    }
