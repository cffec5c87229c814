"""Distinct (user, item) pairs with MovieLens-like marginals, for the evaluation-speed benchmark.

Item popularity is log-normal (sigma 2.6) with the head capped so that the most popular item has 0.34% of all
interactions (Pulp Fiction's share of ML-20M): on ML-20M's shape the median item gets a few dozen interactions and
about a quarter of the items fewer than ten (ML-20M: median 18). User activity is `min_per_user` plus a log-normal
excess (sigma 1.38, as ML-20M: mean 144, median 68), scaled to the requested total and capped at 35% of the
catalogue (ML-20M's heaviest user: 9,254 of 26,744 items). Each user's items are drawn by popularity, with
replacement, duplicates dropped, and the shortfall drawn again (a few rounds): light users get exactly their count,
the heaviest end somewhat short, so the total is a little under the target. Every item never drawn is given to one
random user, so that every library compared sees the same catalogue (RecBole only knows items in its files).
"""

from __future__ import annotations

import numpy as np

#: users, items, interactions, fewest interactions per user
SHAPES = {"ml-20m": (138_493, 26_744, 20_000_263, 20), "ml-1m": (6_040, 3_706, 1_000_209, 20)}


def make_interactions(
    users: int, items: int, interactions: int, min_per_user: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(user index, item index) arrays of distinct pairs (see the module docstring)."""
    rng = np.random.default_rng(seed)
    weights = np.exp(2.6 * rng.standard_normal(items))
    lo, hi = 0.0, float(weights.max())
    for _ in range(60):  # the cap c at which the largest share is 0.34%
        c = (lo + hi) / 2
        lo, hi = (lo, c) if c / np.minimum(weights, c).sum() > 0.0034 else (c, hi)
    weights = np.minimum(weights, lo)
    cdf = np.cumsum(weights / weights.sum())
    excess = rng.lognormal(0.0, 1.38, size=users)
    excess *= max(interactions - min_per_user * users, 0) / excess.sum()
    want = np.minimum(min_per_user + np.floor(excess).astype(np.int64), int(0.35 * items))
    keys = np.empty(0, dtype=np.int64)
    have = np.zeros(users, dtype=np.int64)
    for _ in range(6):  # never more draws than a user still needs, so no user overshoots
        need = want - have
        if need.sum() <= 0.002 * want.sum():
            break
        draw_users = np.repeat(np.arange(users, dtype=np.int64), need)
        draw_items = np.minimum(np.searchsorted(cdf, rng.random(len(draw_users))), items - 1)
        keys = np.sort(np.concatenate([keys, draw_users * items + draw_items]))
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # np.unique, minus its (slow) hashing
        have = np.bincount(keys // items, minlength=users)
    u, i = keys // items, keys % items
    missing = np.flatnonzero(np.bincount(i, minlength=items) == 0)
    if len(missing):
        u = np.concatenate([u, rng.integers(0, users, len(missing))])
        i = np.concatenate([i, missing])
    return u, i
