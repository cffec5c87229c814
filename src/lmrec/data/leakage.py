"""Leakage guards: run-time checks that a split is what its protocol promises, cheap enough to run every time.

A leaky split is the most common reason a paper's numbers do not reproduce, and it shows no symptom except
numbers that are too good. So the split is checked when it is built (each check a few vectorised passes over
the table), and the training matrix a history tower reads is checked when it is handed out:
- no validation or test (user, item) pair is among the training inputs;
- a cold item (cold user) of a cold-start split has no training interaction (beyond a cold user's profile);
- leave-one-out holds out each user's last interaction by time (ties: the later row in the file);
- a global temporal cut leaves every training interaction before every validation and test one.
A failed check is a bug, never a user's mistake, so it raises `LeakageError` (an AssertionError) with the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from lmrec.data.filters import FilterStep
from lmrec.data.splits import TEST, TRAIN, VAL, choose_cold

if TYPE_CHECKING:
    from lmrec.data.interactions import InteractionSplits
    from lmrec.data.sparse import CSRMatrix


class LeakageError(AssertionError):
    """A split or a model input breaks the protocol's promise (a bug in lmrec or in a custom splitter)."""


def _fail(count: int, what: str) -> None:
    if count:
        raise LeakageError(f"leakage guard: {count} {what}")


def check_split(
    frame: pd.DataFrame, strategy: str, ratios: Sequence[float], seed: int, split_options: dict[str, Any]
) -> None:
    """The guards that hold for `strategy` over a processed table (user_idx, item_idx, timestamp, split)."""
    users = frame["user_idx"].to_numpy()
    items = frame["item_idx"].to_numpy()
    times = frame["timestamp"].to_numpy()
    codes = frame["split"].to_numpy()
    if strategy == "temporal_loo":
        check_last_by_time(users, times, codes)
    elif strategy == "temporal":
        check_time_order(times, codes)
    elif strategy in ("cold_items", "cold_users"):
        entities = items if strategy == "cold_items" else users
        cold = choose_cold(entities, float(split_options.get("cold_share", 0.2)), ratios, seed)
        profile = int(split_options.get("cold_profile", 0)) if strategy == "cold_users" else 0
        check_cold(entities, codes, cold, profile, strategy[5:-1])


def check_last_by_time(users: np.ndarray, times: np.ndarray, codes: np.ndarray) -> None:
    """Each user's test row is at or after all its other rows in time, its validation row at or after its train
    rows, and a user has at most one of each."""
    for code, name in ((TEST, "test"), (VAL, "validation")):
        held = codes == code
        per_user = np.bincount(users[held], minlength=users.max(initial=-1) + 1)
        _fail(int((per_user > 1).sum()), f"users have more than one {name} interaction under leave-one-out")
        earlier = codes < code
        latest = pd.Series(times[earlier]).groupby(users[earlier]).max()
        before = latest.reindex(users[held]).to_numpy(dtype=np.float64)
        _fail(int((times[held] < np.nan_to_num(before, nan=-np.inf)).sum()), f"{name} rows are not the user's last")


def check_time_order(times: np.ndarray, codes: np.ndarray) -> None:
    """Every training interaction is before every validation one, and every validation one before every test."""
    for early, late in ((TRAIN, VAL), (TRAIN, TEST), (VAL, TEST)):
        a, b = times[codes == early], times[codes == late]
        if len(a) and len(b) and a.max() >= b.min():
            _fail(int((a >= b.min()).sum()), f"{SPLITS[early]} rows are not before the first {SPLITS[late]} row")


SPLITS = {TRAIN: "train", VAL: "validation", TEST: "test"}


def check_cold(entities: np.ndarray, codes: np.ndarray, cold: dict[int, np.ndarray], profile: int, kind: str) -> None:
    """Cold entities have no training rows (a cold user at most `profile`), and each is in one held-out split."""
    train_counts = np.bincount(entities[codes == TRAIN], minlength=entities.max(initial=-1) + 1)
    all_cold = np.concatenate([cold[VAL], cold[TEST]])
    _fail(int((train_counts[all_cold] > profile).sum()), f"cold {kind}s have training interactions")
    for code, other in ((VAL, TEST), (TEST, VAL)):
        _fail(int(np.isin(entities[codes == other], cold[code]).sum()), f"rows of {SPLITS[code]}-only cold {kind}s")


def pair_keys(users: np.ndarray, items: np.ndarray, num_items: int) -> np.ndarray:
    return np.asarray(users, dtype=np.int64) * int(num_items) + np.asarray(items, dtype=np.int64)


def check_train_inputs(
    row_offsets: np.ndarray, columns: np.ndarray, train_keys: np.ndarray, held_out_keys: np.ndarray, num_items: int
) -> None:
    """The training matrix (CSR) holds exactly the training pairs, and none of the validation or test pairs.

    Its keys (row x num_items + column) come out sorted, so membership is one binary search per held-out pair.
    """
    rows = np.repeat(np.arange(len(row_offsets) - 1, dtype=np.int64), np.diff(row_offsets))
    keys = pair_keys(rows, columns, num_items)
    expected = np.unique(train_keys)
    if len(keys) != len(expected) or not np.array_equal(keys, expected):
        raise LeakageError("leakage guard: the training matrix differs from the training split's (user, item) pairs")
    found = np.searchsorted(keys, held_out_keys)
    found = np.minimum(found, max(len(keys) - 1, 0))
    _fail(int((keys[found] == held_out_keys).sum()) if len(keys) else 0, "validation/test pairs are training inputs")


def history_step(before: pd.DataFrame, after: pd.DataFrame, max_history: int) -> FilterStep:
    """What `data.split.max_history` removed (older training rows; users and items stay unless left with none)."""
    return FilterStep(
        "max_history",
        len(before) - len(after),
        int(before["user_idx"].nunique() - after["user_idx"].nunique()),
        int(before["item_idx"].nunique() - after["item_idx"].nunique()),
        f"each user's last {max_history} training interactions",
    )


def check_train_history(history: CSRMatrix, splits: InteractionSplits) -> None:
    """Leakage guard on what a history tower reads: exactly the training pairs, no validation or test pair."""
    n = splits.num_items
    train_users, train_items, _ = splits.tensors("train")
    held = [splits.tensors(s) for s in ("val", "test")]
    held_keys = pair_keys(torch.cat([h[0] for h in held]).numpy(), torch.cat([h[1] for h in held]).numpy(), n)
    check_train_inputs(
        history.crow.numpy(), history.col.numpy(), pair_keys(train_users.numpy(), train_items.numpy(), n), held_keys, n
    )
