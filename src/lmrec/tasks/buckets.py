"""Metrics by user activity and by item popularity (`task.buckets`), all defined on the training split.

* ``users: {quantiles: Q}`` splits users by their number of training interactions at the quantiles of that
  number over all users (``users_q1`` the least active; a user with ``q_{j-1} < count <= q_j`` is in ``users_qj``);
  ``users: {edges: [10, 50]}`` uses fixed lower bounds instead (``users_0-9``, ``users_10-49``, ``users_50+``).
  Every full-ranking metric is reported per bucket (``test/users_q1/ndcg@10``): the mean over the bucket's users.
* ``items: {cold: true}`` reports ``cold`` (no training interaction, e.g. the held-out items of a cold-start split)
  and ``warm`` items; ``items: {head: 0.2}`` reports ``head`` (the 20% most popular warm items; items tied with the
  last one are included) and ``tail`` (the other warm items). For an item bucket the targets are restricted to
  the bucket's items while the ranking stays over the whole catalogue (the other items, targets or not, compete
  as usual and count as misses): ``test/cold/ndcg@10`` asks how well the model finds its users' cold items among
  everything it could recommend. Users without a target in the bucket are left out of its mean. AUC is not
  computed per item bucket (it would cost another sort of every row).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmrec.errors import ConfigError

__all__ = ["BucketSpec", "BucketValues", "parse_buckets", "user_bucket_values"]


class BucketSpec:
    """A checked `task.buckets`: user bucket bounds (or quantile levels) and which item buckets to report."""

    def __init__(self, config: Any) -> None:
        config = dict(config or {})
        if set(config) - {"users", "items"}:
            raise ConfigError(
                f"task.buckets has unknown keys {sorted(set(config) - {'users', 'items'})}; use users, items"
            )
        users, items = dict(config.get("users") or {}), dict(config.get("items") or {})
        self.quantiles: int | None = None
        self.edges: list[int] = []
        if users:
            if set(users) not in ({"quantiles"}, {"edges"}):
                raise ConfigError(f"task.buckets.users={users}; expected {{quantiles: Q}} or {{edges: [e1, e2, ...]}}")
            if "quantiles" in users:
                q = users["quantiles"]
                if isinstance(q, bool) or not isinstance(q, int) or q < 2:
                    raise ConfigError(f"task.buckets.users.quantiles={q!r}; expected an integer of at least 2")
                self.quantiles = q
            else:
                edges = users["edges"]
                ok = isinstance(edges, Sequence) and len(edges) > 0
                ok = ok and all(isinstance(e, int) and not isinstance(e, bool) and e > 0 for e in edges)
                if not ok or list(edges) != sorted(set(edges)):
                    raise ConfigError(f"task.buckets.users.edges={edges!r}; expected increasing positive integers")
                self.edges = list(edges)
        if set(items) - {"cold", "head"}:
            raise ConfigError(f"task.buckets.items={items}; expected keys cold (true/false) and head (a share)")
        self.cold = bool(items.get("cold", False))
        head = items.get("head")
        if head is not None and not (isinstance(head, int | float) and 0 < float(head) < 1):
            raise ConfigError(f"task.buckets.items.head={head!r}; expected a share of items between 0 and 1")
        self.head = float(head) if head is not None else None

    def user_buckets(self) -> list[str]:
        if self.quantiles:
            return [f"users_q{j + 1}" for j in range(self.quantiles)]
        if not self.edges:
            return []
        lows = [0, *self.edges]
        return [f"users_{lo}-{hi - 1}" for lo, hi in zip(lows, self.edges, strict=False)] + [f"users_{self.edges[-1]}+"]

    def item_buckets(self) -> list[str]:
        return (["cold", "warm"] if self.cold else []) + (["head", "tail"] if self.head is not None else [])


def parse_buckets(config: Any) -> BucketSpec | None:
    spec = BucketSpec(config) if config is not None else None
    return spec if spec is not None and (spec.user_buckets() or spec.item_buckets()) else None


class BucketValues:
    """Batch extra of `RankingEvalBatches`: each user's bucket index (``user_bucket``) and the item buckets' masks
    (``item_groups``), computed once from the training interactions. Picklable, for DataLoader workers."""

    def __init__(self, spec: BucketSpec, user_counts: Tensor, item_counts: Tensor) -> None:
        self.spec = spec
        counts = user_counts.numpy()
        if spec.quantiles:
            bounds = np.quantile(counts, np.arange(1, spec.quantiles) / spec.quantiles) if len(counts) else []
            self.bucket = torch.from_numpy(np.searchsorted(np.asarray(bounds), counts, side="left").astype(np.int64))
        elif spec.edges:
            self.bucket = torch.from_numpy(
                np.searchsorted(np.asarray(spec.edges), counts, side="right").astype(np.int64)
            )
        else:
            self.bucket = None
        self.bounds = bounds.tolist() if spec.quantiles else list(spec.edges)
        warm = item_counts > 0
        self.groups: dict[str, Tensor] = {}
        if spec.cold:
            self.groups.update(cold=~warm, warm=warm)
        if spec.head is not None:
            n_head = int(np.ceil(spec.head * int(warm.sum())))
            ranked = torch.sort(item_counts[warm], descending=True).values
            cut = int(ranked[n_head - 1]) if n_head > 0 else int(item_counts.max()) + 1
            head = warm & (item_counts >= cut)
            self.groups.update(head=head, tail=warm & ~head)

    def __call__(self, users: Tensor) -> dict[str, Any]:
        out: dict[str, Any] = {"item_groups": self.groups} if self.groups else {}
        if self.bucket is not None:
            out["user_bucket"] = self.bucket[users]
        return out


def user_bucket_values(values: dict[str, Tensor], bucket: Tensor, names: list[str]) -> dict[str, Tensor]:
    """``{bucket/metric: [B]}``: each per-user value in its user's bucket, NaN (not counted) in the others."""
    out: dict[str, Tensor] = {}
    bucket = bucket.to(next(iter(values.values())).device) if values else bucket
    for j, prefix in enumerate(names):
        inside = bucket == j
        for name, v in values.items():
            out[f"{prefix}/{name}"] = torch.where(inside, v, torch.nan)
    return out
