"""A source's tables -> the processed tables a run trains on (indexed, with item texts, split), cached as Parquet.

Parsing, validating, building texts and splitting take a few seconds; a sweep runs them hundreds of times with
identical inputs. The cache key hashes the input files' digests, the source's identity and options, and every
processing option, so a change to any of them builds a fresh entry, and a second run with the same inputs reads
Parquet instead. We use pyarrow's Parquet directly rather than HF `datasets`' Arrow storage, measured
(`lmrec-bench run cache_format`, docs/benchmarks.md): on 20M interactions a checked cache hit is 2.0x slower
through `datasets` (the run needs pandas frames, and `to_pandas` copies out of the memory map), the write 6.6x
slower at 4x the peak memory, the entry 3.2x larger on disk; and `datasets`' fingerprinting would not see our
config anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.atomic import publish_dir
from lmrec.cache_integrity import entry_lock, remove_entry, seal_dir, verified_entry
from lmrec.data.filters import implicit_feedback, kcore, summarize_steps, text_filter
from lmrec.data.io.errors import DataValidationError
from lmrec.data.leakage import check_split, history_step
from lmrec.data.sources.base import Source, SourceTables
from lmrec.data.splits import SPLIT_CODES, make_split, truncate_history
from lmrec.data.texts import render_item_texts

log = logging.getLogger(__name__)

#: Bumped whenever the processed layout changes, so older cache entries are never read as current.
CACHE_VERSION = 3


@dataclass
class ProcessedData:
    """interactions: user_idx, item_idx, rating, timestamp, split (0 train, 1 val, 2 test) (+ weight under
    data.source.duplicates=sum), after the protocol's filters; users: user_id (+ the
    source's user fields) per user_idx; items: item_id, text (+ the source's item fields) per item_idx."""

    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    cache_hit: bool = False
    key: str = ""  # the cache key: a fingerprint of the inputs and options, recorded in run.json
    input_sha256: dict[str, str] = field(default_factory=dict)
    #: what each protocol filter removed (implicit, text, kcore, max_history): FilterStep dicts, in order
    filters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def split(self, name: str) -> pd.DataFrame:
        return self.interactions[self.interactions["split"] == SPLIT_CODES[name]]


def processed_key(digests: dict[str, str], options: dict[str, Any]) -> str:
    """The cache key of processed tables: changes with any input file or any option that shapes them."""
    payload = json.dumps({"v": CACHE_VERSION, "inputs": digests, "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def keep_first_users(tables: SourceTables, max_users: int) -> SourceTables:
    """The first `max_users` users (by id) with their interactions and the items they interacted with."""
    interactions = tables.interactions
    kept = np.sort(interactions["user_id"].unique())[:max_users]
    interactions = interactions[interactions["user_id"].isin(kept)]
    items = tables.items[tables.items["item_id"].isin(interactions["item_id"].unique())]
    users = tables.users[tables.users["user_id"].isin(kept)] if tables.users is not None else None
    log.info(
        "data.max_users=%s: kept %d users, %d items they interacted with, %d interactions",
        max_users,
        len(kept),
        len(items),
        len(interactions),
    )
    return SourceTables(interactions=interactions, items=items, users=users, dropped=tables.dropped)


def build_processed(source: Source, options: dict[str, Any]) -> ProcessedData:
    """Read the source, apply the protocol's filters, index users and items (sorted by id), render item texts,
    split, and check the split against the leakage guards."""
    tables = source.read(drop_invalid=options["drop_invalid"])
    if options.get("max_users") is not None:
        tables = keep_first_users(tables, int(options["max_users"]))
    interactions = tables.interactions
    _require_rows(source, interactions, "the file has only a header or every row was dropped")
    steps: list = []
    interactions, step = implicit_feedback(interactions, options.get("implicit_threshold"))
    steps.append(step)
    fields = list(source.item_fields)
    items = tables.items.sort_values("item_id", kind="stable").reset_index(drop=True)
    texts = render_item_texts(items, fields, options["template"], options["separator"])
    items = pd.DataFrame({"item_id": items["item_id"].to_numpy(), "text": texts, **{f: items[f] for f in fields}})
    interactions, items, step = text_filter(
        interactions, items, int(options.get("min_text_words", 0)), bool(options.get("require_text", False))
    )
    steps.append(step)
    user_k, item_k = (int(k) for k in options.get("kcore", (0, 0)))
    interactions, step = kcore(interactions, user_k, item_k)
    steps.append(step)
    if step is not None and item_k > 1:  # an item under its k leaves the catalogue too (counted: never-rated ones)
        kept_items = items["item_id"].isin(interactions["item_id"].unique()).to_numpy()
        step.items = int((~kept_items).sum())
        log.info("kcore: %d items leave the catalogue (under %d interactions, unrated ones too)", step.items, item_k)
        items = items[kept_items].reset_index(drop=True)
    _require_rows(source, interactions, "the protocol's filters removed every interaction")
    user_ids = np.sort(interactions["user_id"].unique())
    users = pd.DataFrame({"user_id": user_ids})
    if tables.users is not None:
        users = users.merge(tables.users, on="user_id", how="left", validate="one_to_one")
    user_idx = np.searchsorted(user_ids, interactions["user_id"].to_numpy())
    item_idx = np.searchsorted(items["item_id"].to_numpy(), interactions["item_id"].to_numpy())
    timestamps = interactions["timestamp"].to_numpy(np.int64)
    split_options = options.get("split_options", {})
    split = make_split(
        options["split"],
        user_idx,
        timestamps,
        options["ratios"],
        options["seed"],
        items=item_idx,
        predefined=interactions["split"].to_numpy() if "split" in interactions.columns else None,
        cut=split_options.get("cut"),
        cold_share=float(split_options.get("cold_share", 0.2)),
        cold_profile=int(split_options.get("cold_profile", 0)),
    )
    frame = pd.DataFrame(
        {
            "user_idx": user_idx.astype(np.int64),
            "item_idx": item_idx.astype(np.int64),
            "rating": interactions["rating"].to_numpy(np.float32),
            "timestamp": timestamps,
            "split": split,
            # data.source.duplicates=sum: how many rows each pair merged (a weight for tasks that want one)
            **({"weight": interactions["weight"].to_numpy(np.float32)} if "weight" in interactions.columns else {}),
        }
    )
    check_split(frame, options["split"], options["ratios"], options["seed"], split_options)
    if split_options.get("max_history") is not None:
        keep = truncate_history(user_idx, timestamps, split, int(split_options["max_history"]))
        before = frame
        frame = frame[keep].reset_index(drop=True)
        steps.append(history_step(before, frame, int(split_options["max_history"])))
    return ProcessedData(
        interactions=frame, users=users, items=items, dropped=tables.dropped, filters=summarize_steps(steps)
    )


def _require_rows(source: Source, interactions: pd.DataFrame, why: str) -> None:
    if interactions.empty:
        raise DataValidationError(source.root / source.files()[0], None, None, f"no interactions to train on ({why})")


def load_processed(
    source: Source, cache_dir: Path | None, options: dict[str, Any], verify: bool = True
) -> ProcessedData:
    """Processed tables from the cache when the inputs and options match, else built (and cached).

    The entry is checked, and built if need be, under its file lock: two cold jobs of a sweep build it once (the
    second waits, then reads). An entry that fails its manifest check (a changed byte, a missing file, or no
    manifest at all: an interrupted write) is removed and rebuilt, so it is repaired once, not re-parsed every run.
    """
    digests = source.digests(verify)
    keyed = {**options, **source.identity()}
    key = processed_key(digests, keyed)
    if cache_dir is None:
        data = build_processed(source, options)
    else:
        entry = Path(cache_dir) / "processed" / key
        with entry_lock(entry):
            data = _read_entry(entry) if verified_entry(entry, "processed-data") else None
            if data is None:
                data = build_processed(source, options)
                _write_entry(entry, data, keyed, digests)
                log.info("processed data cached at %s", entry)
        if data.cache_hit:
            _log_hit(source, entry, data)
    data.key, data.input_sha256 = key, digests
    return data


def _log_hit(source: Source, entry: Path, data: ProcessedData) -> None:
    log.info("processed data cache hit: %s", entry)
    for step in data.filters:
        log.info(
            "%s removed %d interactions, %d users, %d items (when this entry was built)",
            step["name"],
            step["rows"],
            step["users"],
            step["items"],
        )
    for name, counts in data.dropped.items():  # a cached run must report the cleaning as loudly as the first
        log.warning(
            "%s: %d rows were dropped when this cache entry was built (%s)",
            source.root / name,
            sum(counts.values()),
            ", ".join(f"{n} {reason}" for reason, n in counts.items()),
        )


def _read_entry(entry: Path) -> ProcessedData | None:
    try:
        meta = json.loads((entry / "key.json").read_text())
        return ProcessedData(
            interactions=pd.read_parquet(entry / "interactions.parquet"),
            users=pd.read_parquet(entry / "users.parquet"),
            items=pd.read_parquet(entry / "items.parquet"),
            dropped=meta.get("dropped", {}),
            filters=meta.get("filters", []),
            cache_hit=True,
        )
    except Exception as err:  # intact bytes that still do not read (a layout change): rebuilt, never trusted
        log.warning("removing unreadable processed-data cache %s: %s", entry, err)
        remove_entry(entry)
        return None


def _write_entry(entry: Path, data: ProcessedData, options: dict[str, Any], digests: dict[str, str]) -> None:
    """Write into a temporary folder, seal it with its manifest (last), and publish it whole."""
    with publish_dir(entry) as tmp:
        data.interactions.to_parquet(tmp / "interactions.parquet", index=False)
        data.users.to_parquet(tmp / "users.parquet", index=False)
        data.items.to_parquet(tmp / "items.parquet", index=False)
        meta = {"inputs": digests, "options": options, "dropped": data.dropped, "filters": data.filters}
        (tmp / "key.json").write_text(json.dumps(meta, indent=2, default=str))
        seal_dir(tmp)  # the done marker: present only once every file above is complete
