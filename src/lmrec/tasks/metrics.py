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

Tie-breaking in the top-k metrics follows :func:`torch.topk`, whose order among equal scores is
unspecified and may differ between CPU and CUDA.  With continuous model scores exact ties are rare;
AUC, in contrast, handles ties exactly.  Scores must not be NaN.
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
from lmrec.tasks.auc import auc_from_counts, exact_auc_counts, target_counts

__all__ = ["TOPK_METRICS", "RankingMetricAccumulator", "metric_names", "normalize_ks", "ranking_metrics"]

#: Metric families evaluated at every cut-off ``k``, in the order :func:`metric_names` lists them.
TOPK_METRICS: tuple[str, ...] = ("ndcg", "recall", "hr", "mrr", "precision")


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

    Returns:
        ``{name: Tensor[B]}`` for every name in :func:`metric_names` (``ks``, ``auc``), per user, so that the
        caller can average over exactly the users it wants (and sum across processes).  Values are
        float32, or float64 if ``scores`` is float64; NaN marks users for which a metric is undefined.

    Per-user values rather than batch means are returned because batch means cannot be combined
    correctly when batches contain different numbers of evaluable users.  On CPU the users are processed in
    chunks (:func:`_rows_per_chunk`) so that no temporary, not even the masked scores, is ever ``[B, N]``.
    """
    ks_ = normalize_ks(ks)
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
    # One top-k for the largest cut-off serves every smaller one.  If k exceeds the number of items,
    # every item is ranked and the smaller lists are simply prefixes.
    k_max = min(ks_[-1], n)
    rows = _rows_per_chunk(b, n, device)
    buf = torch.empty((min(rows, b), n), dtype=dtype, device=device) if not owned and excl is not None else None
    neg_inf = torch.tensor(-math.inf, dtype=dtype, device=device)
    hits_parts = [torch.zeros((0, k_max), dtype=torch.bool, device=device)]
    n_pos_parts = [torch.zeros(0, dtype=torch.int64, device=device)]
    for r0 in range(0, b, rows):  # 1) mask (in place, or fused with the chunk copy) and top-k, chunk by chunk
        r1 = min(b, r0 + rows)
        x, t, e = work[r0:r1], targets[r0:r1], excl[r0:r1] if excl is not None else None
        if e is not None:  # torch.where(out=) is faster than masked_fill_, and also makes the masked copy
            x = torch.where(e, neg_inf, x, out=x if owned else buf[: r1 - r0])
        top = torch.topk(x, k_max, dim=1, largest=True, sorted=True).indices
        # Hits from [B, K] gathers: no dense `targets & ~exclude` is ever built.
        hits_parts.append(t.gather(1, top) & ~e.gather(1, top) if e is not None else t.gather(1, top))
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
    hits = torch.cat(hits_parts)  # [B, K] bool; excluded items that fill short lists are never hits
    n_pos = torch.cat(n_pos_parts)  # int64 [B]
    has_pos = n_pos > 0
    nan = torch.tensor(math.nan, dtype=torch.float64, device=device)
    result = {
        name: torch.where(has_pos, v, nan).to(dtype) for name, v in _topk_metrics(hits, n_pos, ks_, k_max).items()
    }
    if auc:
        values = auc_from_counts(twice_u, auc_pos, n_neg).to(device)
        result["auc"] = torch.where(has_pos, values, nan).to(dtype)
    return result


def _topk_metrics(hits: Tensor, n_pos: Tensor, ks: tuple[int, ...], k_max: int) -> dict[str, Tensor]:
    """float64 ``{metric@k: [B]}`` in :data:`TOPK_METRICS`-major order from the ``[B, k_max]`` hit flags."""
    b, device = len(hits), hits.device
    cum_hits = hits.to(torch.int64).cumsum(dim=1)  # integer cumsum: exact and deterministic
    positions = torch.arange(k_max, device=device)
    discount = 1.0 / torch.log2(positions.to(torch.float64) + 2.0)  # gain of rank r = 1/log2(r+1)
    gains = hits.to(torch.float64) * discount
    ideal_cum = discount.cumsum(dim=0)  # IDCG for 1..K relevant items
    # 0-based position of the first hit, k_max if there is none (min over masked positions, rather than
    # argmax, so the answer does not depend on argmax's tie rule).
    first_hit = torch.where(hits, positions, k_max).amin(dim=1) if k_max > 0 else n_pos.new_full((b,), 0)
    n_pos_f = n_pos.to(torch.float64)
    per_k: dict[int, dict[str, Tensor]] = {}
    for k in ks:
        kk = min(k, k_max)
        hits_k = cum_hits[:, kk - 1].to(torch.float64) if kk > 0 else n_pos_f.new_zeros(b)
        ideal_len = n_pos.clamp(min=1, max=max(kk, 1))
        idcg = ideal_cum[ideal_len - 1] if kk > 0 else n_pos_f.new_ones(b)
        per_k[k] = {
            "ndcg": gains[:, :kk].sum(dim=1) / idcg,
            "recall": hits_k / n_pos_f.clamp(min=1),
            "hr": (hits_k > 0).to(torch.float64),
            "mrr": torch.where(first_hit < kk, 1.0 / (first_hit.to(torch.float64) + 1.0), 0.0),
            "precision": hits_k / k,
        }
    return {f"{m}@{k}": per_k[k][m] for m in TOPK_METRICS for k in ks}


class RankingMetricAccumulator(Metric):
    """Streams :func:`ranking_metrics` over batches of users and averages per user at the end.

    State is a vector of per-metric sums (float64) and a vector of per-metric counts of non-NaN users
    (int64), both reduced with ``sum``.  Summing sums and counts across DDP ranks and then dividing
    gives exactly the mean over all evaluated users, whereas averaging per-rank (or per-batch) means
    would weight users unequally whenever ranks/batches hold different numbers of evaluable users.
    Counts are per metric because AUC can be undefined for users whose other metrics are fine.

    Note: under DDP, a ``DistributedSampler`` that pads the dataset repeats a few users; use an
    evaluation sampler without padding if the mean must be exact to the last user.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    sums: Tensor
    counts: Tensor

    def __init__(self, ks: Sequence[int], *, auc: bool = True, inplace: bool = False, **kwargs: Any) -> None:
        """``auc`` and ``inplace`` are passed to every :func:`ranking_metrics` call; ``inplace=True`` is for callers
        whose score tensors are throwaways (e.g. fresh ``model.score_all_items`` output)."""
        super().__init__(**kwargs)
        self.ks: tuple[int, ...] = normalize_ks(ks)
        self.auc, self.inplace = bool(auc), bool(inplace)
        self.names: list[str] = metric_names(self.ks, auc=self.auc)
        m = len(self.names)
        self.add_state("sums", default=torch.zeros(m, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", default=torch.zeros(m, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor, exclude: Tensor | None = None) -> None:
        """Add one chunk of users; see :func:`ranking_metrics` for the argument conventions."""
        values = ranking_metrics(scores, targets, exclude, self.ks, auc=self.auc, inplace=self.inplace)
        stacked = torch.stack([values[name].to(torch.float64) for name in self.names])  # [M, B]
        valid = ~torch.isnan(stacked)
        self.sums += torch.where(valid, stacked, 0.0).sum(dim=1).to(self.sums.device)
        self.counts += valid.sum(dim=1).to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        """Mean over all non-NaN users per metric; NaN for a metric that no user could be scored on."""
        means = (self.sums / self.counts.to(torch.float64)).to(torch.float32)
        return {name: means[i] for i, name in enumerate(self.names)}
