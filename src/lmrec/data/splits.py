"""Train/validation/test splits in RecBole's vocabulary: a global random ratio split, or per-user temporal
leave-one-out. Both return one split code per interaction so the tables stay in one piece."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmrec.errors import ConfigError

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}
SPLIT_CODES = {name: code for code, name in SPLIT_NAMES.items()}


STRATEGIES = ("random", "temporal_loo")


def check_split_options(strategy: str, ratios: Sequence[float]) -> None:
    """The one check of `data.split`, run when the datamodule is configured (before any file is read)."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"data.split.strategy={strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ConfigError(f"data.split.ratios={list(ratios)}; expected three non-negative numbers, e.g. [8, 1, 1]")


def random_ratio_split(num_rows: int, ratios: Sequence[float], seed: int) -> np.ndarray:
    """Shuffle all interactions with `seed` and cut them by `ratios` (normalised, e.g. 8:1:1)."""
    fractions = np.asarray(ratios, dtype=np.float64) / float(sum(ratios))
    n_train = int(round(fractions[0] * num_rows))
    n_val = int(round(fractions[1] * num_rows))
    order = np.random.default_rng(seed).permutation(num_rows)
    codes = np.full(num_rows, TEST, dtype=np.int8)
    codes[order[:n_train]] = TRAIN
    codes[order[n_train : n_train + n_val]] = VAL
    return codes


def temporal_leave_one_out(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Each user's last interaction is test, the one before is validation, the rest train.

    Ties in time keep file order (a stable sort), so the split is deterministic. Users with fewer than three
    interactions keep everything in train: holding out their only items would leave nothing to learn from.
    """
    users = np.asarray(users)
    n = len(users)
    order = np.lexsort((np.arange(n), np.asarray(timestamps), users))
    sorted_users = users[order]
    run_end = np.r_[np.flatnonzero(np.diff(sorted_users)) + 1, n].astype(np.int64)
    lengths = np.diff(np.r_[0, run_end])
    position_from_end = np.repeat(run_end, lengths) - 1 - np.arange(n)
    eligible = np.repeat(lengths, lengths) >= 3
    codes_sorted = np.full(n, TRAIN, dtype=np.int8)
    codes_sorted[eligible & (position_from_end == 0)] = TEST
    codes_sorted[eligible & (position_from_end == 1)] = VAL
    codes = np.empty_like(codes_sorted)
    codes[order] = codes_sorted
    return codes


def make_split(
    strategy: str, users: np.ndarray, timestamps: np.ndarray, ratios: Sequence[float], seed: int
) -> np.ndarray:
    """One split code per interaction for `data.split.strategy` (checked by `check_split_options` when the
    datamodule is configured)."""
    splitters = {
        "random": lambda: random_ratio_split(len(users), ratios, seed),
        "temporal_loo": lambda: temporal_leave_one_out(users, timestamps),
    }
    return splitters[strategy]()
