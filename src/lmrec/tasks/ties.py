"""Tie policies for top-K metrics (`task.ties`): which of several equally scored items is ranked first.

`torch.topk` orders equal scores however its kernel happens to (by item index, in an order that depends on K, the
row length and the device), so a model that gives many items one score (a cold ID tower, a constant model) gets
credit for targets that happen to have the right ids. The policies:

* ``random`` (the default): ties are broken by a pseudo-random key per (seed, user, item), so a constant-score
  model gets exactly chance-level metrics in expectation. The key is a hash, not a draw from a generator, so the
  order does not depend on batch size, chunking, device or how DDP shards the users: the same seed gives the same
  numbers in every run, and two models evaluated with one seed see the same tie order (a paired comparison).
* ``pessimistic``: a target ranks after every non-target it ties with (a lower bound on the metrics).
* ``first``: whatever `torch.topk` returns, without any tie handling (reproduces numbers from before the option).

Excluded items (already recommended, or from earlier splits) are ``-inf`` and rank after every candidate, also
after candidates whose genuine score is ``-inf``.

Cost: only rows whose top-K is ambiguous are resolved. With ``vals``/``idx`` from one ``topk(k + 1)``, a row is
ambiguous when the K-th and (K+1)-th scores tie (a tie group crosses the cut-off), or when two neighbours inside
the top-K tie and exactly one of them is a hit (a tie that mixes targets and non-targets inside the list). Ties
among non-targets only, or among targets only, change no metric and are left alone. For continuous scores no row
is ambiguous and the policy costs one compare over ``[B, K]``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lmrec.errors import ConfigError

__all__ = [
    "TIE_POLICIES",
    "ambiguous_rows",
    "check_tie_policy",
    "chunk_hits",
    "hash_keys",
    "resolve_topk",
    "tie_keys",
]

TIE_POLICIES = ("random", "pessimistic", "first")

_MASK62 = (1 << 62) - 1
_EXCLUDED = 1 << 62  # keys of excluded items: after every candidate (candidate keys are below 2**62)
_NOT_MEMBER = torch.iinfo(torch.int64).max


def check_tie_policy(ties: str) -> str:
    """The one check of `task.ties`."""
    if ties not in TIE_POLICIES:
        raise ConfigError(f"task.ties={ties!r}; expected one of {', '.join(repr(p) for p in TIE_POLICIES)}")
    return ties


def _to_signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_U1, _U2, _UGOLDEN = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x9E3779B97F4A7C15
_C1, _C2, _GOLDEN = (_to_signed(c) for c in (_U1, _U2, _UGOLDEN))


def _shr(x: Tensor, s: int) -> Tensor:
    """Logical right shift of int64 (torch shifts signed integers arithmetically)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _mix64(x: Tensor) -> Tensor:
    """splitmix64's finaliser on int64 (wrapping multiplication): a well-tested bijective bit mixer. A counter-based
    hash rather than numpy's Philox because it vectorises over arbitrary (user, item) arrays on any device."""
    x = (x ^ _shr(x, 30)) * _C1
    x = (x ^ _shr(x, 27)) * _C2
    return x ^ _shr(x, 31)


def _np_mix64(x: np.ndarray) -> np.ndarray:
    """:func:`_mix64` in place on uint64 (numpy's unsigned shifts are logical; ~5x faster than torch on CPU)."""
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(_U1)
        x ^= x >> np.uint64(27)
        x *= np.uint64(_U2)
        x ^= x >> np.uint64(31)
    return x


def hash_keys(seed: int, users: Tensor, items: Tensor) -> Tensor:
    """Pseudo-random int64 keys in ``[0, 2**62)`` for broadcastable ``users`` and ``items``: a pure function of
    (seed, user, item), hence identical across runs, batchings and devices (CPU computes them with numpy)."""
    users, items = users.to(torch.int64), items.to(torch.int64)
    if users.device.type == "cpu" and items.device.type == "cpu":
        u = users.numpy().astype(np.uint64) + np.uint64(1)
        s = _np_mix64(np.array([int(seed) & ((1 << 64) - 1)], dtype=np.uint64))
        with np.errstate(over="ignore"):
            x = _np_mix64(_np_mix64(u) ^ s) + items.numpy().astype(np.uint64) * np.uint64(_UGOLDEN)
        return torch.from_numpy((_np_mix64(x) & np.uint64(_MASK62)).view(np.int64))
    return _torch_hash_keys(seed, users, items)


def _torch_hash_keys(seed: int, users: Tensor, items: Tensor) -> Tensor:
    """The device-generic :func:`hash_keys`, bit for bit the same values."""
    base = _mix64(
        _mix64(users + 1) ^ _mix64(torch.tensor(_to_signed(int(seed) & ((1 << 64) - 1)), device=users.device))
    )
    return _mix64(base + items * _GOLDEN) & _MASK62


def tie_keys(policy: str, seed: int, users: Tensor, targets: Tensor, excl: Tensor | None) -> Tensor:
    """int64 ``[R, N]`` order among equal scores, smaller first, for rows of users ``[R]`` with ``targets`` (the
    hits that count) and excluded items ``excl``: random hash keys, or (pessimistic) non-targets before targets."""
    r, n = targets.shape
    items = torch.arange(n, device=targets.device)
    if policy == "random":
        keys = hash_keys(seed, users.unsqueeze(1), items.unsqueeze(0))
    elif policy == "pessimistic":
        keys = items.unsqueeze(0) + targets.to(torch.int64) * n
    else:  # "first": by item index
        keys = items.unsqueeze(0).expand(r, n).clone()
    if excl is not None:
        keys = torch.where(excl, _EXCLUDED + items.unsqueeze(0), keys)
    return keys


def ambiguous_rows(vals: Tensor, hits: Tensor, k: int) -> Tensor:
    """bool ``[R]``: rows whose metrics depend on the tie order; ``vals`` ``[R, k or k + 1]`` from one sorted topk
    (a (k+1)-th column when there are more than ``k`` items), ``hits`` ``[R, k]`` the hit flags in that order."""
    top = vals[:, :k]
    mixed = ((top[:, 1:] == top[:, :-1]) & (hits[:, 1:] != hits[:, :-1])).any(dim=1)
    if vals.shape[1] > k:
        mixed |= vals[:, k - 1] == vals[:, k]
    return mixed


def resolve_topk(x: Tensor, vals: Tensor, idx: Tensor, k: int, keys: Tensor) -> Tensor:
    """Exact top-``k`` item indices ``[R, k]`` of masked scores ``x`` ``[R, N]`` in the order (score descending,
    key ascending), given the sorted ``topk`` output ``vals``/``idx`` ``[R, >= k]`` of the same rows.

    The items scoring above the k-th score are all in the list (only their order among themselves may change);
    the remaining slots go to the members of the k-th score's tie group with the smallest keys, found by one topk
    over the group's keys, so nothing is sorted beyond ``[R, k]``.
    """
    threshold = vals[:, k - 1 : k]
    top_vals, top_idx = vals[:, :k], idx[:, :k]
    above = (top_vals > threshold).sum(dim=1)  # a: the first a entries are above the tie group
    slots = k - above
    s_max = int(slots.max()) if len(slots) else 0
    group_keys = torch.where(x == threshold, keys, _NOT_MEMBER)
    winners = torch.topk(group_keys, s_max, dim=1, largest=False, sorted=True).indices
    # Order the above-threshold prefix by (score desc, key asc): stable sort by key, then by score.
    by_key = torch.argsort(keys.gather(1, top_idx), dim=1, stable=True)
    v1, i1 = top_vals.gather(1, by_key), top_idx.gather(1, by_key)
    prefix = i1.gather(1, torch.argsort(v1, dim=1, descending=True, stable=True))
    pos = torch.arange(k, device=x.device).unsqueeze(0)
    fill = winners.gather(1, (pos - above.unsqueeze(1)).clamp(0, max(s_max - 1, 0))) if s_max else prefix
    return torch.where(pos < above.unsqueeze(1), prefix, fill)


def chunk_hits(
    x: Tensor,
    vals: Tensor,
    top: Tensor,
    t: Tensor,
    e: Tensor | None,
    k: int,
    ties: str,
    seed: int,
    users: Tensor,
    groups: dict[str, Tensor],
) -> dict[str, Tensor]:
    """``{group: [R, k] hit flags}`` of one masked chunk (``""``: all targets), ties resolved by the policy.

    Hits come from ``[R, K]`` gathers: no dense ``targets & ~exclude`` is ever built.  Only the ambiguous rows
    (:func:`ambiguous_rows`) are re-ranked, and under ``random`` once for every group (its order
    does not depend on which items are targets), under ``pessimistic`` once per group."""

    def gather_hits(order: Tensor, tt: Tensor, ee: Tensor | None) -> Tensor:
        return tt.gather(1, order) & ~ee.gather(1, order) if ee is not None else tt.gather(1, order)

    order = top[:, :k]
    hits = gather_hits(order, t, e)
    out = {"": hits, **{g: hits & mask[order] for g, mask in groups.items()}}
    if ties == "first" or k == 0:
        return out
    flagged = {g: ambiguous_rows(vals, h, k) for g, h in out.items()}
    if ties == "random":
        rows = torch.stack(list(flagged.values())).any(dim=0).nonzero().squeeze(1)
        if len(rows) == 0:
            return out
        er = e[rows] if e is not None else None
        keys = tie_keys("random", seed, users[rows], t[rows], er)
        fixed = resolve_topk(x[rows], vals[rows], top[rows], k, keys)
        new = gather_hits(fixed, t[rows], er)
        for g in out:
            out[g] = out[g].clone()
            out[g][rows] = new & groups[g][fixed] if g else new
        return out
    for g, rows_mask in flagged.items():  # pessimistic: the targets decide the order
        rows = rows_mask.nonzero().squeeze(1)
        if len(rows) == 0:
            continue
        er = e[rows] if e is not None else None
        tg = t[rows] & groups[g].unsqueeze(0) if g else t[rows]
        fixed = resolve_topk(x[rows], vals[rows], top[rows], k, tie_keys("pessimistic", seed, users[rows], tg, er))
        out[g] = out[g].clone()
        out[g][rows] = gather_hits(fixed, tg, er)
    return out
