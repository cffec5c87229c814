"""An Amazon-Reviews-2023-shaped category (`<Category>.jsonl.gz` reviews, `meta_<Category>.jsonl.gz` metadata).

One JSON object per line with every field the release has, timestamps in milliseconds, lists and a `details` dict
in the metadata. Users (a fifth as many as reviews) and items are drawn with skewed popularity (weight
(rank + 10) ** -0.5 for users, ** -0.8 for items: long tails as in the real categories); review titles and texts
are 4 and 20-80 words; each item has a title, store, 2-3 categories, 3 features, 1-2 description paragraphs, a
4-key details dict, image URLs and the other metadata fields. Repeated (user, item) pairs occur (about 0.15 % at
full size) as in the real data.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import IO

import numpy as np

CATEGORY = "All_Beauty"
WORDS = [
    "soft",
    "gentle",
    "skin",
    "hair",
    "daily",
    "use",
    "smell",
    "fresh",
    "light",
    "cream",
    "bottle",
    "great",
    "price",
    "quality",
    "works",
    "well",
    "dry",
    "oily",
    "color",
    "lasting",
    "shine",
    "brush",
    "small",
    "travel",
    "size",
    "nice",
    "product",
    "recommend",
    "again",
    "love",
    "value",
    "box",
    "clean",
    "natural",
]


def _words(rng: np.random.Generator, n: int) -> str:
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n))


def _skewed_ids(rng: np.random.Generator, count: int, n: int, exponent: float, prefix: str) -> list[str]:
    """`n` draws of `count` ids, the id of popularity rank r drawn with weight (r + 10) ** -exponent."""
    weights = (np.arange(count) + 10.0) ** -exponent
    ranks = rng.choice(count, size=n, p=weights / weights.sum())
    return [f"{prefix}{r:09d}" for r in rng.permutation(count)[ranks]]


def _item(rng: np.random.Generator, i: int, item: str) -> dict:
    return {
        "main_category": "All Beauty",
        "title": _words(rng, 8).title(),
        "average_rating": round(float(rng.uniform(1, 5)), 1),
        "rating_number": int(rng.integers(1, 5000)),
        "features": [_words(rng, 10) for _ in range(3)],
        "description": [_words(rng, 30) for _ in range(int(rng.integers(1, 3)))],
        "price": None if i % 3 else round(float(rng.uniform(2, 80)), 2),
        "images": [{"thumb": f"https://example.com/{item}_{k}.jpg", "variant": "MAIN"} for k in range(2)],
        "videos": [],
        "store": f"Store {i % 5000}",
        "categories": ["Beauty & Personal Care", "Hair Care", _words(rng, 2).title()][: 2 + i % 2],
        "details": {"Brand": f"Brand {i % 3000}", "Item Form": "Cream", "Size": "1 oz", "UPC": str(i)},
        "parent_asin": item,
        "bought_together": None,
    }


def write_category(root: Path, reviews: int, items: int, plain: bool = False, seed: int = 0) -> list[Path]:
    """The two files of one category (gzip level 1, to keep writing quick; `plain`: .jsonl); their paths."""
    rng = np.random.default_rng(seed)
    suffix = ".jsonl" if plain else ".jsonl.gz"
    root.mkdir(parents=True, exist_ok=True)

    def opener(path: Path) -> IO[str]:
        """A text writer, gzip level 1 (the release's .jsonl.gz) or plain."""
        return open(path, "w", encoding="utf-8") if plain else gzip.open(path, "wt", encoding="utf-8", compresslevel=1)

    meta_path = root / f"meta_{CATEGORY}{suffix}"
    with opener(meta_path) as out:
        for i in range(items):
            out.write(json.dumps(_item(rng, i, f"B{i:09d}")) + "\n")
    users = _skewed_ids(rng, max(reviews // 5, 1), reviews, 0.5, "A")
    reviewed = _skewed_ids(rng, items, reviews, 0.8, "B")
    times = 1_500_000_000_000 + rng.integers(0, 200_000_000_000, reviews)
    ratings = rng.integers(1, 6, reviews)
    reviews_path = root / f"{CATEGORY}{suffix}"
    with opener(reviews_path) as out:
        for k in range(reviews):
            record = {
                "rating": float(ratings[k]),
                "title": _words(rng, 4),
                "text": _words(rng, int(rng.integers(20, 80))),
                "images": [],
                "asin": reviewed[k],
                "parent_asin": reviewed[k],
                "user_id": users[k],
                "timestamp": int(times[k]),
                "helpful_vote": int(k % 7),
                "verified_purchase": bool(k % 2),
            }
            out.write(json.dumps(record) + "\n")
    return [reviews_path, meta_path]
