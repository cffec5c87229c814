"""Train/validation/test splits in RecBole's vocabulary, one split code per interaction so the tables stay whole.

Strategies (`data.split.strategy`):
- `random`: global seeded ratio split (the default, 8:1:1);
- `user_random`: the same ratio cut inside each user's interactions;
- `temporal`: a global cut in time, at the time quantiles the ratios give or at two timestamps (`split.cut`);
- `temporal_loo` / `random_loo`: per user, the last interaction (by time, or a seeded random one) is test and the
  one before validation;
- `cold_items` / `cold_users`: a seeded share of the items (users) is cold: each cold one goes wholly to
  validation or test (in the ratio of the validation and test ratios), the other interactions are split at random
  by the ratios; `cold_users` may keep each cold user's earliest `cold_profile` interactions in train;
- `source`: the split the source ships (a `split` column with train/val/test, e.g. MIND's official split).

Equal timestamps: every order by time is a stable sort, so ties keep the file order (the row order the source
read). A global temporal cut never separates equal timestamps: the cut is a timestamp, rows at it go to the later
split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lmrec.errors import DataError

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VAL: "val", TEST: "test"}
SPLIT_CODES = {name: code for code, name in SPLIT_NAMES.items()}
#: Values a source's own `split` column may hold (MIND calls validation "dev", RecBole "valid").
SOURCE_SPLIT_VALUES = {"train": TRAIN, "val": VAL, "valid": VAL, "validation": VAL, "dev": VAL, "test": TEST}

STRATEGIES = ("random", "user_random", "temporal", "temporal_loo", "random_loo", "cold_items", "cold_users", "source")
LOO = ("temporal_loo", "random_loo")
COLD = ("cold_items", "cold_users")


def _fractions(ratios: Sequence[float]) -> np.ndarray:
    return np.asarray(ratios, dtype=np.float64) / float(sum(ratios))


def group_positions(order: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows taken in `order` (sorted by group), each row's position within its group and its group's size."""
    sorted_groups = groups[order]
    n = len(order)
    run_end = np.r_[np.flatnonzero(np.diff(sorted_groups)) + 1, n].astype(np.int64)
    lengths = np.diff(np.r_[0, run_end])
    size = np.repeat(lengths, lengths)
    position = np.arange(n) - np.repeat(run_end - lengths, lengths)
    return position, size


def _scatter(order: np.ndarray, sorted_codes: np.ndarray) -> np.ndarray:
    codes = np.empty_like(sorted_codes)
    codes[order] = sorted_codes
    return codes


def random_ratio_split(num_rows: int, ratios: Sequence[float], seed: int) -> np.ndarray:
    """Shuffle all interactions with `seed` and cut them by `ratios` (normalised, e.g. 8:1:1)."""
    fractions = _fractions(ratios)
    n_train = int(round(fractions[0] * num_rows))
    n_val = int(round(fractions[1] * num_rows))
    order = np.random.default_rng(seed).permutation(num_rows)
    codes = np.full(num_rows, TEST, dtype=np.int8)
    codes[order[:n_train]] = TRAIN
    codes[order[n_train : n_train + n_val]] = VAL
    return codes


def user_random_split(users: np.ndarray, ratios: Sequence[float], seed: int) -> np.ndarray:
    """Each user's interactions shuffled (seeded) and cut by `ratios`: round(share x count) to train, then val.

    A user with one interaction keeps it in train (round(0.8) = 1), so every user is known to the model.
    """
    users = np.asarray(users)
    fractions = _fractions(ratios)
    order = np.lexsort((np.random.default_rng(seed).random(len(users)), users))
    position, size = group_positions(order, users)
    n_train = np.round(fractions[0] * size)
    n_val = np.round(fractions[1] * size)
    sorted_codes = np.where(position < n_train, TRAIN, np.where(position < n_train + n_val, VAL, TEST))
    return _scatter(order, sorted_codes.astype(np.int8))


def temporal_cut_points(timestamps: np.ndarray, ratios: Sequence[float]) -> tuple[float, float]:
    """The (validation start, test start) timestamps at the time quantiles the ratios name."""
    ordered = np.sort(np.asarray(timestamps), kind="stable")
    n = len(ordered)
    fractions = np.cumsum(_fractions(ratios))
    points = []
    for share in fractions[:2]:
        k = int(round(share * n))
        points.append(float(ordered[k]) if k < n else np.inf)
    return points[0], points[1]


def temporal_cut_split(
    timestamps: np.ndarray, ratios: Sequence[float], cut: Sequence[float] | None = None
) -> np.ndarray:
    """Global time cut: before the validation start -> train, before the test start -> val, the rest -> test.

    Rows at a cut timestamp go to the later split, so equal timestamps never straddle it (split sizes then follow
    the ratios only approximately when many rows share a time).
    """
    timestamps = np.asarray(timestamps)
    val_start, test_start = (float(c) for c in cut) if cut is not None else temporal_cut_points(timestamps, ratios)
    codes = np.full(len(timestamps), TEST, dtype=np.int8)
    codes[timestamps < test_start] = VAL
    codes[timestamps < val_start] = TRAIN
    return codes


def leave_one_out(users: np.ndarray, order_key: np.ndarray) -> np.ndarray:
    """Each user's last interaction by `order_key` is test, the one before validation, the rest train.

    Ties in `order_key` keep file order (a stable sort), so the split is deterministic. Users with fewer than
    three interactions keep everything in train: holding out their only items would leave nothing to learn from.
    """
    users = np.asarray(users)
    order = np.lexsort((np.arange(len(users)), np.asarray(order_key), users))
    position, size = group_positions(order, users)
    from_end = size - 1 - position
    sorted_codes = np.full(len(users), TRAIN, dtype=np.int8)
    eligible = size >= 3
    sorted_codes[eligible & (from_end == 0)] = TEST
    sorted_codes[eligible & (from_end == 1)] = VAL
    return _scatter(order, sorted_codes)


def temporal_leave_one_out(users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Leave-one-out by time: the last interaction is test (ties in time: the later row in the file)."""
    return leave_one_out(users, timestamps)


def random_leave_one_out(users: np.ndarray, seed: int) -> np.ndarray:
    """Leave-one-out of a seeded random interaction per user (and another one for validation)."""
    return leave_one_out(users, np.random.default_rng(seed).random(len(users)))


def choose_cold(entities: np.ndarray, cold_share: float, ratios: Sequence[float], seed: int) -> dict[int, np.ndarray]:
    """The cold items (or users) of a cold-start split: {VAL: ids, TEST: ids}, seeded, from the ids present.

    round(share x distinct ids) are cold; they go to validation and test in the ratio of those two shares.
    """
    present = np.unique(np.asarray(entities))
    rng = np.random.default_rng([int(seed), 1])  # a stream of its own: the warm rows' split stays the random one
    chosen = rng.permutation(present)[: int(round(float(cold_share) * len(present)))]
    to_val = int(round(len(chosen) * float(ratios[1]) / float(ratios[1] + ratios[2])))
    return {VAL: np.sort(chosen[:to_val]), TEST: np.sort(chosen[to_val:])}


def cold_split(
    entities: np.ndarray,
    timestamps: np.ndarray,
    ratios: Sequence[float],
    seed: int,
    cold_share: float,
    profile: int = 0,
) -> np.ndarray:
    """Rows of cold entities go to that entity's split (val or test); the warm rows are split at random by ratios.

    `profile` > 0: each cold entity's earliest `profile` rows (by time, ties in file order) stay in train.
    """
    entities = np.asarray(entities)
    codes = random_ratio_split(len(entities), ratios, seed)
    chosen = choose_cold(entities, cold_share, ratios, seed)
    for code, ids in chosen.items():
        codes[np.isin(entities, ids)] = code
    if profile > 0:
        cold = np.flatnonzero(np.isin(entities, np.concatenate(list(chosen.values()))))
        order = cold[np.lexsort((cold, np.asarray(timestamps)[cold], entities[cold]))]
        position, _ = group_positions(np.arange(len(order)), entities[order])
        codes[order[position < profile]] = TRAIN
    return codes


def source_split(values: pd.Series | np.ndarray) -> np.ndarray:
    """Split codes from the source's own `split` column (train / val / test, or valid, validation, dev)."""
    labels = pd.Series(np.asarray(values)).astype(str).str.strip().str.lower()
    codes = labels.map(SOURCE_SPLIT_VALUES)
    if codes.isna().any():
        bad = labels[codes.isna()]
        raise DataError(
            f"data.split.strategy=source: the source's split column holds {bad.iloc[0]!r} in row {bad.index[0]} "
            f"({int(codes.isna().sum())} rows); expected one of {', '.join(SOURCE_SPLIT_VALUES)}"
        )
    return codes.to_numpy(np.int8)


def make_split(
    strategy: str,
    users: np.ndarray,
    timestamps: np.ndarray,
    ratios: Sequence[float],
    seed: int,
    *,
    items: np.ndarray | None = None,
    predefined: np.ndarray | None = None,
    cut: Sequence[float] | None = None,
    cold_share: float = 0.2,
    cold_profile: int = 0,
) -> np.ndarray:
    """One split code per interaction for `data.split.strategy` (checked by `lmrec.data.options` when the
    datamodule is configured)."""
    if strategy == "source" and predefined is None:
        raise DataError("data.split.strategy=source, but the source provides no `split` column")
    splitters = {
        "random": lambda: random_ratio_split(len(users), ratios, seed),
        "user_random": lambda: user_random_split(users, ratios, seed),
        "temporal": lambda: temporal_cut_split(timestamps, ratios, cut),
        "temporal_loo": lambda: temporal_leave_one_out(users, timestamps),
        "random_loo": lambda: random_leave_one_out(users, seed),
        "cold_items": lambda: cold_split(items, timestamps, ratios, seed, cold_share),
        "cold_users": lambda: cold_split(users, timestamps, ratios, seed, cold_share, int(cold_profile)),
        "source": lambda: source_split(predefined),
    }
    return splitters[strategy]()


def truncate_history(users: np.ndarray, timestamps: np.ndarray, codes: np.ndarray, max_history: int) -> np.ndarray:
    """Rows to keep so that each user has at most its last `max_history` training interactions (by time, ties
    in file order); validation and test rows are always kept."""
    train = np.flatnonzero(codes == TRAIN)
    order = train[np.lexsort((train, np.asarray(timestamps)[train], np.asarray(users)[train]))]
    position, size = group_positions(np.arange(len(order)), np.asarray(users)[order])
    keep = np.ones(len(codes), dtype=bool)
    keep[order[size - position > max_history]] = False
    return keep
