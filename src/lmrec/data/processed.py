"""Raw MovieLens files -> the processed tables a run trains on, cached as Parquet.

Parsing, validating, building texts and splitting take a few seconds; a sweep runs them hundreds of times with
identical inputs. The cache key hashes the input files' digests and every option that shapes the tables, so a
change to either builds a fresh entry, and a second run with the same inputs reads Parquet instead. We use
pyarrow's Parquet directly rather than HF `datasets`: these are three small typed tables, and `datasets`'
own fingerprinting would not see our config anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lmrec.atomic import publish_dir
from lmrec.data.errors import DataValidationError
from lmrec.data.movielens import input_fingerprint, load_movielens
from lmrec.data.splits import SPLIT_NAMES, make_split
from lmrec.data.texts import build_item_texts, validate_template
from lmrec.errors import MissingInputError

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass
class ProcessedData:
    """interactions: user_idx, item_idx, rating, timestamp, split (0 train, 1 val, 2 test);
    users: user_id per user_idx; items: item_id and text per item_idx."""

    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    cache_hit: bool = False
    key: str = ""  # the cache key: a fingerprint of the inputs and options, recorded in run.json
    input_sha256: dict[str, str] = field(default_factory=dict)

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def split(self, name: str) -> pd.DataFrame:
        code = {v: k for k, v in SPLIT_NAMES.items()}[name]
        return self.interactions[self.interactions["split"] == code]


def input_digests(root: Path, verify: bool) -> dict[str, str]:
    """SHA-256 of each input file, verified against SHA256SUMS when the dataset ships one."""
    return input_fingerprint(root, with_tags=(root / "tags.csv").is_file(), verify=verify)


def processed_key(digests: dict[str, str], options: dict) -> str:
    """The cache key of processed tables: changes with any input file or any option that shapes them."""
    payload = json.dumps({"v": CACHE_VERSION, "inputs": digests, "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def build_processed(root: Path, options: dict) -> ProcessedData:
    """Parse, validate, index, build texts and split. Errors name file, line and column (see movielens.py)."""
    with_tags = (root / "tags.csv").is_file()
    if not with_tags:
        log.info("%s has no tags.csv: item texts carry no tags", root)
    tables = load_movielens(
        root,
        verify=False,  # the caller verified checksums already while computing the cache key
        drop_invalid=options["drop_invalid"],
        rating_min=options["rating_min"],
        rating_max=options["rating_max"],
        with_tags=with_tags,
    )
    ratings, movies, tags = tables.ratings, tables.movies, tables.tags
    if options.get("max_users") is not None:
        keep_users = np.sort(ratings["user_id"].unique())[: int(options["max_users"])]
        ratings = ratings[ratings["user_id"].isin(keep_users)]
        movies = movies[movies["item_id"].isin(ratings["item_id"].unique())]
        log.info(
            "data.max_users=%s: kept %d users, %d items they rated, %d ratings",
            options["max_users"],
            len(keep_users),
            len(movies),
            len(ratings),
        )
    if ratings.empty:
        raise DataValidationError(
            root / "ratings.csv",
            None,
            None,
            "no ratings to train on (the file has only a header or every row was dropped)",
        )
    users = pd.DataFrame({"user_id": np.sort(ratings["user_id"].unique()).astype(np.int64)})
    movies = movies.sort_values("item_id").reset_index(drop=True)
    texts = build_item_texts(movies, tags, options["template"], options["separator"], options["max_tags"])
    items = pd.DataFrame({"item_id": movies["item_id"].astype(np.int64), "text": texts})
    user_idx = np.searchsorted(users["user_id"].to_numpy(), ratings["user_id"].to_numpy())
    item_idx = np.searchsorted(items["item_id"].to_numpy(), ratings["item_id"].to_numpy())
    split = make_split(options["split"], user_idx, ratings["timestamp"].to_numpy(), options["ratios"], options["seed"])
    interactions = pd.DataFrame(
        {
            "user_idx": user_idx.astype(np.int64),
            "item_idx": item_idx.astype(np.int64),
            "rating": ratings["rating"].to_numpy(np.float32),
            "timestamp": ratings["timestamp"].to_numpy(np.int64),
            "split": split,
        }
    )
    return ProcessedData(interactions=interactions, users=users, items=items, dropped=tables.dropped)


def load_processed(root: Path, cache_dir: Path | None, options: dict, verify: bool = True) -> ProcessedData:
    """Processed tables from the cache when the inputs and options match, else built and cached."""
    root = Path(root)
    validate_template(options["template"])
    missing = [name for name in ("ratings.csv", "movies.csv") if not (root / name).is_file()]
    if missing:
        raise MissingInputError(f"dataset folder {root} lacks {', '.join(missing)}")
    digests = input_digests(root, verify)
    key = processed_key(digests, options)
    entry = Path(cache_dir) / "processed" / key if cache_dir is not None else None
    data = _read_entry(entry) if entry is not None and (entry / "done").is_file() else None
    if data is None:
        data = build_processed(root, options)
        if entry is not None:
            _write_entry(entry, data, options, digests)
            log.info("processed data cached at %s", entry)
    else:
        log.info("processed data cache hit: %s", entry)
        for name, counts in data.dropped.items():  # a cached run must report the cleaning as loudly as the first
            log.warning(
                "%s: %d rows were dropped when this cache entry was built (%s)",
                root / name,
                sum(counts.values()),
                ", ".join(f"{n} {reason}" for reason, n in counts.items()),
            )
    data.key, data.input_sha256 = key, digests
    return data


def _read_entry(entry: Path) -> ProcessedData | None:
    try:
        meta = json.loads((entry / "key.json").read_text())
        return ProcessedData(
            interactions=pd.read_parquet(entry / "interactions.parquet"),
            users=pd.read_parquet(entry / "users.parquet"),
            items=pd.read_parquet(entry / "items.parquet"),
            dropped=meta.get("dropped", {}),
            cache_hit=True,
        )
    except Exception as err:  # a damaged entry is removed and rebuilt, never trusted
        log.warning("removing unreadable processed-data cache %s: %s", entry, err)
        shutil.rmtree(entry, ignore_errors=True)
        return None


def _write_entry(entry: Path, data: ProcessedData, options: dict, digests: dict[str, str]) -> None:
    """Write into a temporary folder and publish it whole, so readers never see half an entry."""
    with publish_dir(entry) as tmp:
        data.interactions.to_parquet(tmp / "interactions.parquet", index=False)
        data.users.to_parquet(tmp / "users.parquet", index=False)
        data.items.to_parquet(tmp / "items.parquet", index=False)
        meta = {"inputs": digests, "options": options, "dropped": data.dropped}
        (tmp / "key.json").write_text(json.dumps(meta, indent=2, default=str))
        (tmp / "done").write_text("")
