"""Vectorised full-ranking metrics for implicit-feedback evaluation (RecBole conventions).

Evaluation ranks *every* item for every user ("full ranking") instead of sampling a handful of
negatives, because sampled metrics are known to disagree with full-ranking ones about which model
is better.  The price is that each batch of users produces a dense ``[B, N]`` score matrix, so all
metrics here are computed from that matrix with a constant number of tensor ops per chunk of users: no
Python loop over users or items, and no intermediate larger than one chunk of scores (nothing ``[B, N, K]``).
The budget is the model's own cost: scoring plus one masked top-k; ``docs/evaluation_speed.md`` measures it.

Conventions (chosen to match RecBole so numbers are comparable with published baselines):

* ``exclude`` marks items the user has already interacted with in earlier splits.  They are set to
  ``-inf`` before ranking, so they can never occupy a top-k slot ahead of a real candidate, and they
  are neither positives nor negatives for AUC.  If an item is both a target and excluded, the
  exclusion wins: the item is dropped entirely.  A target the model is forbidden to recommend cannot
  be "hit", and counting it in the recall denominator would penalise the model for obeying the mask.
* ``recall@k = hits@k / n_targets`` (RecBole), *not* ``hits@k / min(k, n_targets)``.
* ``precision@k = hits@k / k`` even if the user has fewer than ``k`` candidates.
* ``ndcg@k`` uses binary relevance, gain ``1 / log2(rank + 1)`` and an ideal DCG over
  ``min(n_targets, k)`` positions.
* ``mrr@k`` is ``1 / rank`` of the first hit inside the top ``k``, else 0.
* ``hr@k`` is 1 if at least one target is in the top ``k``, else 0.
* ``auc`` is the Mann-Whitney probability that a random target outscores a random non-excluded
  non-target, ties counting 1/2.  It is over the whole candidate list, independent of ``ks``, exact
  (an int64 numerator), and optional (``auc=False`` skips it and drops the entry); see :mod:`lmrec.tasks.auc`.
* Users with no (non-excluded) targets get NaN for every metric, and users with no negative candidate
  get NaN AUC; the caller (or :class:`RankingMetricAccumulator`) drops NaN users rather than
  counting them as 0, which would silently bias the mean toward users who were never evaluable.

Ties in the top-k metrics follow the tie policy (``ties``, :mod:`lmrec.tasks.ties`; ``random`` by default, so
equal scores never favour low item ids); AUC counts ties 1/2, the expectation under random tie-breaking, whatever
the policy.  Scores must not be NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lmrec.errors import ConfigError
from lmrec.tasks.auc import auc_from_counts, exact_auc_counts, group_target_counts, target_counts
from lmrec.tasks.ties import check_tie_policy, chunk_hits
from lmrec.tasks.topk import TOPK_METRICS, topk_values

__all__ = ["TOPK_METRICS", "RankingMetricAccumulator", "metric_names", "normalize_ks", "ranking_metrics"]


def normalize_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Validate cut-offs (`task.ks`) and return them sorted and de-duplicated: the one check of `task.ks`.

    Sorting makes the metric order (and hence the accumulator's state layout) independent of how a
    config happened to list the cut-offs, which matters when states from several processes are summed.
    """
    if isinstance(ks, int | str) or not isinstance(ks, Sequence):
        raise ConfigError(f"task.ks={ks!r}; expected a list of positive cut-offs, e.g. [10, 20]")
    out: set[int] = set()
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int | float) or int(k) != k or k < 1:
            raise ConfigError(f"task.ks={list(ks)}: every cut-off must be a positive integer, got {k!r}")
        out.add(int(k))
    if not out:
        raise ConfigError("task.ks=[]; expected at least one cut-off, e.g. [10, 20]")
    return tuple(sorted(out))


def metric_names(ks: Sequence[int], *, auc: bool = True) -> list[str]:
    """Names of all metrics returned by :func:`ranking_metrics` for ``ks``, in a stable order.

    The order is metric-major (``ndcg@5, ndcg@10, recall@5, ...``) with ``auc`` last (absent if ``auc`` is
    False), so that logs group related numbers together.
    """
    ks_ = normalize_ks(ks)
    return [f"{m}@{k}" for m in TOPK_METRICS for k in ks_] + (["auc"] if auc else [])


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    """Upcast half-precision scores: fp16/bf16 cannot represent 1/log2 gains or large ranks accurately.

    float64 input stays float64 so that callers who need the extra precision keep it.
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def _rows_per_chunk(b: int, n: int, device: torch.device) -> int:
    """Users per chunk, so that ranking_metrics' temporaries are bounded whatever ``B`` is.

    On CPU ~2M scores: the 8 MB scratch buffers are then reused from the heap rather than page-faulted afresh on
    every call, as allocations above glibc's 32 MB mmap threshold are (chunks of 2^24+ scores were measured up to
    2x slower in the copying mode, see ``docs/evaluation_speed.md``), and per-chunk overhead is still negligible.
    Elsewhere ~64M scores, enough to keep an accelerator busy with ~1.5 GB of temporaries."""
    budget = CHUNK_ELEMENTS if device.type == "cpu" else DEVICE_CHUNK_ELEMENTS
    return max(1, min(b, budget // max(n, 1)))


#: Scores per chunk of :func:`ranking_metrics` on CPU and on other devices; see :func:`_rows_per_chunk`.
CHUNK_ELEMENTS = 1 << 21
DEVICE_CHUNK_ELEMENTS = 1 << 26


@torch.no_grad()
def ranking_metrics(
    scores: Tensor,
    targets: Tensor,
    exclude: Tensor | None,
    ks: Sequence[int],
    *,
    auc: bool = True,
    inplace: bool = False,
    ties: str = "random",
    seed: int = 0,
    users: Tensor | None = None,
    item_groups: dict[str, Tensor] | None = None,
) -> dict[str, Tensor]:
    """Per-user full-ranking metrics for one chunk of users.

    Args:
        scores: ``[B, N]`` float scores of every item for ``B`` users (any float dtype, any device).
        targets: ``[B, N]`` bool, held-out positives of the split being evaluated.
        exclude: ``[B, N]`` bool or ``None``; items that must not be recommended (training items, and
            validation items when evaluating test).  Exclusion wins over ``targets``.
        ks: cut-offs; duplicates are ignored.
        auc: compute ``auc`` (the costliest metric); if False the ``auc`` entry is absent from the result.
        inplace: the caller will not read ``scores`` again, so it may be used as scratch space (it is masked and
            sorted in place, its contents are undefined afterwards).  This saves one copy of each chunk; it is
            ignored (a copy is made) when ``scores`` is not contiguous or has to be upcast anyway.
        ties: the top-K tie policy, ``random`` | ``pessimistic`` | ``first`` (see :mod:`lmrec.tasks.ties`).
        seed, users: the ``random`` policy's keys are a hash of (seed, user, item); ``users`` ``[B]`` are the
            users' indices (None: the row numbers, so the order then depends on how users are batched).
        item_groups: ``{name: bool [N]}`` item buckets; for each, the top-K metrics again with the targets
            restricted to the bucket's items (ranking still over the whole catalogue), named ``name/ndcg@10``...

    Returns:
        ``{name: Tensor[B]}`` for every name in :func:`metric_names` (``ks``, ``auc``), per user, so that the
        caller can average over exactly the users it wants (and sum across processes).  Values are
        float32, or float64 if ``scores`` is float64; NaN marks users for which a metric is undefined.

    Per-user values rather than batch means are returned because batch means cannot be combined
    correctly when batches contain different numbers of evaluable users.  On CPU the users are processed in
    chunks (:func:`_rows_per_chunk`) so that no temporary, not even the masked scores, is ever ``[B, N]``.
    """
    ks_ = normalize_ks(ks)
    check_tie_policy(ties)
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, N], got shape {tuple(scores.shape)}")
    if not scores.is_floating_point():
        raise TypeError(f"scores must be a float tensor, got {scores.dtype}")
    if targets.shape != scores.shape:
        raise ValueError(f"targets shape {tuple(targets.shape)} != scores shape {tuple(scores.shape)}")
    if exclude is not None and exclude.shape != scores.shape:
        raise ValueError(f"exclude shape {tuple(exclude.shape)} != scores shape {tuple(scores.shape)}")

    dtype = _working_dtype(scores.dtype)
    device = scores.device
    b, n = scores.shape
    work = scores.detach()
    owned = inplace and work.is_contiguous()
    if work.dtype != dtype:  # half precision: the upcast copy is ours to scribble on
        work, owned = work.to(dtype).contiguous(), True
    targets = targets.to(device=device, dtype=torch.bool)
    excl = exclude.to(device=device, dtype=torch.bool) if exclude is not None else None
    users = users.to(device) if users is not None else torch.arange(b, device=device)
    groups = {name: mask.to(device=device, dtype=torch.bool) for name, mask in (item_groups or {}).items()}
    # One top-k for the largest cut-off serves every smaller one.  If k exceeds the number of items,
    # every item is ranked and the smaller lists are simply prefixes.  A tie policy looks one further.
    k_max = min(ks_[-1], n)
    k_look = k_max if ties == "first" else min(k_max + 1, n)
    rows = _rows_per_chunk(b, n, device)
    buf = torch.empty((min(rows, b), n), dtype=dtype, device=device) if not owned and excl is not None else None
    neg_inf = torch.tensor(-math.inf, dtype=dtype, device=device)
    hits_parts: dict[str, list[Tensor]] = {g: [] for g in ("", *groups)}
    n_pos_parts: list[Tensor] = []
    for r0 in range(0, b, rows):  # 1) mask (in place, or fused with the chunk copy) and top-k, chunk by chunk
        r1 = min(b, r0 + rows)
        x, t, e = work[r0:r1], targets[r0:r1], excl[r0:r1] if excl is not None else None
        if e is not None:  # torch.where(out=) is faster than masked_fill_, and also makes the masked copy
            x = torch.where(e, neg_inf, x, out=x if owned else buf[: r1 - r0])
        vals, top = torch.topk(x, k_look, dim=1, largest=True, sorted=True)
        for name, hits in chunk_hits(x, vals, top, t, e, k_max, ties, seed, users[r0:r1], groups).items():
            hits_parts[name].append(hits)
        if not auc:
            n_pos_parts.append(target_counts(t, e).to(device))
    del buf
    if auc:  # 2) AUC over all rows at once (one hand-off to the sorting threads), see lmrec.tasks.auc
        threads = torch.get_num_threads() if device.type == "cpu" else 1
        chunk = CHUNK_ELEMENTS if device.type == "cpu" else DEVICE_CHUNK_ELEMENTS
        with ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool:
            twice_u, auc_pos, n_neg = exact_auc_counts(
                work, targets, excl, masked=owned, chunk_elements=chunk, pool=pool, threads=threads
            )
        n_pos_parts = [auc_pos.to(device)]
    nan = torch.tensor(math.nan, dtype=torch.float64, device=device)
    result: dict[str, Tensor] = {}
    n_pos_of = {"": torch.cat([torch.zeros(0, dtype=torch.int64, device=device), *n_pos_parts])}
    n_pos_of.update(group_target_counts(targets, excl, groups))
    for group, parts in hits_parts.items():
        hits = torch.cat([torch.zeros((0, k_max), dtype=torch.bool, device=device), *parts])  # [B, K]
        n_pos = n_pos_of[group]
        prefix = f"{group}/" if group else ""
        for name, v in topk_values(hits, n_pos, ks_, k_max).items():
            result[prefix + name] = torch.where(n_pos > 0, v, nan).to(dtype)
        if not group and auc:
            values = auc_from_counts(twice_u, auc_pos, n_neg).to(device)
            result["auc"] = torch.where(n_pos > 0, values, nan).to(dtype)
    return result


class RankingMetricAccumulator(Metric):
    """Streams :func:`ranking_metrics` over batches of users and averages per user at the end.

    State is a vector of per-metric sums (float64) and a vector of per-metric counts of non-NaN users
    (int64), both reduced with ``sum``.  Summing sums and counts across DDP ranks and then dividing
    gives exactly the mean over all evaluated users, whereas averaging per-rank (or per-batch) means
    would weight users unequally whenever ranks/batches hold different numbers of evaluable users.
    Counts are per metric because AUC can be undefined for users whose other metrics are fine.

    Besides ``names`` (the full-ranking metrics), ``extra_names`` (e.g. ``sampled100/ndcg@10``,
    ``users_q1/ndcg@10``) are accumulated from per-user values a caller computes (``update(values=...)``), so
    every number of a split shares one state vector and one sync.  ``auc`` may be left out of single updates
    (``update(..., auc=False)``): if no update of the pass computed it, ``compute`` leaves it out.

    Note: under DDP, a ``DistributedSampler`` that pads the dataset repeats a few users; use an
    evaluation sampler without padding if the mean must be exact to the last user.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    sums: Tensor
    counts: Tensor
    passes: Tensor

    def __init__(
        self,
        ks: Sequence[int],
        *,
        auc: bool = True,
        inplace: bool = False,
        ties: str = "random",
        seed: int = 0,
        item_groups: dict[str, Tensor] | None = None,
        extra_names: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        """The options are those of :func:`ranking_metrics`, passed to each call (``inplace``: throwaway scores)."""
        super().__init__(**kwargs)
        self.ks: tuple[int, ...] = normalize_ks(ks)
        self.auc, self.inplace = bool(auc), bool(inplace)
        self.ties, self.seed = check_tie_policy(ties), int(seed)
        self.item_groups = dict(item_groups or {})
        base = metric_names(self.ks, auc=False)
        grouped = [f"{g}/{name}" for g in self.item_groups for name in base]
        self.names: list[str] = [*metric_names(self.ks, auc=self.auc), *grouped, *extra_names]
        self._index = {name: i for i, name in enumerate(self.names)}
        m = len(self.names)
        self.add_state("sums", default=torch.zeros(m, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", default=torch.zeros(m, dtype=torch.int64), dist_reduce_fx="sum")
        # [updates, updates that computed auc]: whether `auc` belongs in this pass's results, agreed by every rank.
        self.add_state("passes", default=torch.zeros(2, dtype=torch.int64), dist_reduce_fx="sum")

    def update(
        self,
        scores: Tensor | None = None,
        targets: Tensor | None = None,
        exclude: Tensor | None = None,
        users: Tensor | None = None,
        *,
        auc: bool | None = None,
        values: dict[str, Tensor] | None = None,
    ) -> None:
        """Add one chunk of users (see :func:`ranking_metrics` for the arguments), and/or per-user ``values``
        ``{name: [B]}`` computed elsewhere (NaN: not counted); ``auc=False`` skips AUC for this chunk."""
        all_values, with_auc = dict(values or {}), self.auc and (auc is None or bool(auc))
        if scores is not None:
            options = {"inplace": self.inplace, "ties": self.ties, "seed": self.seed, "item_groups": self.item_groups}
            all_values.update(ranking_metrics(scores, targets, exclude, self.ks, auc=with_auc, users=users, **options))
        if unknown := set(all_values) - set(self._index):
            raise ValueError(f"values {sorted(unknown)} are not metrics of this accumulator")
        if not all_values:
            return
        index = torch.tensor([self._index[name] for name in all_values], device=self.sums.device)
        stacked = torch.stack([v.to(torch.float64).to(self.sums.device) for v in all_values.values()])  # [M, B]
        valid = ~torch.isnan(stacked)
        self.sums.index_add_(0, index, torch.where(valid, stacked, 0.0).sum(dim=1))
        self.counts.index_add_(0, index, valid.sum(dim=1))
        self.passes += torch.tensor([1, int("auc" in all_values)], device=self.passes.device)

    def compute(self) -> dict[str, Tensor]:
        """Mean over all non-NaN users per metric; NaN for a metric that no user could be scored on."""
        means = (self.sums / self.counts.to(torch.float64)).to(torch.float32)
        skip_auc = bool(self.passes[0] > 0) and bool(self.passes[1] == 0)
        keep = [not (skip_auc and name.rsplit("/", 1)[-1] == "auc") for name in self.names]
        return {name: means[i] for i, name in enumerate(self.names) if keep[i]}
