"""Vectorised full-ranking metrics for implicit-feedback evaluation (RecBole conventions).

Evaluation ranks *every* item for every user ("full ranking") instead of sampling a handful of
negatives, because sampled metrics are known to disagree with full-ranking ones about which model
is better.  The price is that each batch of users produces a dense ``[B, N]`` score matrix, so all
metrics here are computed from that matrix with a constant number of tensor ops: no Python loop over
users or items, and no intermediate larger than ``O(B * N)`` (in particular nothing ``[B, N, K]``).

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
  non-target, ties counting 1/2.  It is over the whole candidate list, independent of ``ks``.
* Users with no (non-excluded) targets get NaN for every metric, and users with no negative candidate
  get NaN AUC; the caller (or :class:`RankingMetricAccumulator`) drops NaN users rather than
  counting them as 0, which would silently bias the mean toward users who were never evaluable.

Tie-breaking in the top-k metrics follows :func:`torch.topk`, whose order among equal scores is
unspecified and may differ between CPU and CUDA.  With continuous model scores exact ties are rare;
AUC, in contrast, handles ties exactly (see :func:`_auc`).  Scores must not be NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from lmrec.errors import ConfigError

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


def metric_names(ks: Sequence[int]) -> list[str]:
    """Names of all metrics returned by :func:`ranking_metrics` for ``ks``, in a stable order.

    The order is metric-major (``ndcg@5, ndcg@10, recall@5, ...``) with ``auc`` last, so that logs
    group related numbers together.
    """
    ks_ = normalize_ks(ks)
    return [f"{m}@{k}" for m in TOPK_METRICS for k in ks_] + ["auc"]


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    """Upcast half-precision scores: fp16/bf16 cannot represent 1/log2 gains or large ranks accurately.

    float64 input stays float64 so that callers who need the extra precision keep it.
    """
    return torch.float64 if dtype == torch.float64 else torch.float32


def _auc(scores: Tensor, pos: Tensor, neg: Tensor) -> Tensor:
    """Per-user AUC with ties counting 1/2, via midranks, without any per-user loop.

    Equivalent to the rank-sum (Mann-Whitney U) formula ``(sum of midranks of positives -
    n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` restricted to candidates, but computed as counts:
    for each positive, ``#neg with a strictly lower score + 1/2 * #neg with an equal score``.

    How ties are found: each row is sorted once, and a block of equal scores is a run of equal
    neighbours in the sorted row.  With ``cum_neg`` the exclusive prefix count of negatives along the
    sorted row, ``#neg < s`` is ``cum_neg`` at the start of the block and ``#neg <= s`` is ``cum_neg`` just
    past its end.  Both are spread over the block with a forward ``cummax`` / backward ``cummin``
    (``cum_neg`` is non-decreasing, so the nearest block boundary wins); this is linear, unlike a
    ``searchsorted`` of the row into itself, so the sort stays the only ``N log N`` step.  Reading only at
    block boundaries makes the result independent of how the sort orders equal values, so an unstable
    sort is fine and the output is deterministic across devices.  Excluded items simply count as
    neither positive nor negative, whatever their score, so no ``-inf`` masking is needed here (which
    would otherwise tie masked items with genuine ``-inf`` scores).

    Twice the U statistic is an exact integer, so the numerator is accumulated in int64 and only the
    final division is done in float64.
    """
    b, n = scores.shape
    # Counts fit in int32 (N < 2**31), which halves the [B, N] temporaries; memory, not compute, is what
    # limits how many users can be evaluated per chunk.
    sorted_scores, order = torch.sort(scores, dim=1)
    block_start = torch.ones_like(pos)
    block_start[:, 1:] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
    del sorted_scores
    block_end = torch.ones_like(pos)
    block_end[:, :-1] = block_start[:, 1:]
    neg_sorted = neg.gather(1, order)
    pos_sorted = pos.gather(1, order)
    del order
    cum_incl = neg_sorted.cumsum(dim=1, dtype=torch.int32)  # negatives among sorted positions 0..i
    cum_excl = cum_incl - neg_sorted.to(torch.int32)  # negatives among sorted positions 0..i-1
    del neg_sorted
    neg_below = torch.cummax(cum_excl.masked_fill_(~block_start, 0), dim=1).values
    del cum_excl
    neg_at_or_below = torch.cummin(cum_incl.masked_fill_(~block_end, n + 1).flip(1), dim=1).values.flip(1)
    del cum_incl
    # 2 * (neg_below + 0.5 * neg_tied) = neg_below + neg_at_or_below, an integer.
    twice_u = (neg_below + neg_at_or_below).masked_fill_(~pos_sorted, 0).sum(dim=1, dtype=torch.int64)
    n_pos = pos.sum(dim=1)
    n_neg = neg.sum(dim=1)
    denom = (2 * n_pos * n_neg).to(torch.float64)
    auc = twice_u.to(torch.float64) / denom
    return torch.where(denom > 0, auc, torch.nan)


@torch.no_grad()
def ranking_metrics(scores: Tensor, targets: Tensor, exclude: Tensor | None, ks: Sequence[int]) -> dict[str, Tensor]:
    """Per-user full-ranking metrics for one chunk of users.

    Args:
        scores: ``[B, N]`` float scores of every item for ``B`` users (any float dtype, any device).
        targets: ``[B, N]`` bool, held-out positives of the split being evaluated.
        exclude: ``[B, N]`` bool or ``None``; items that must not be recommended (training items, and
            validation items when evaluating test).  Exclusion wins over ``targets``.
        ks: cut-offs; duplicates are ignored.

    Returns:
        ``{name: Tensor[B]}`` for every name in :func:`metric_names` (``ks``), per user, so that the
        caller can average over exactly the users it wants (and sum across processes).  Values are
        float32, or float64 if ``scores`` is float64; NaN marks users for which a metric is undefined.

    Per-user values rather than batch means are returned because batch means cannot be combined
    correctly when batches contain different numbers of evaluable users.
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
    work = scores.detach().to(dtype)
    pos = targets.to(device=device, dtype=torch.bool)
    if exclude is not None:
        excl = exclude.to(device=device, dtype=torch.bool)
        pos = pos & ~excl
        cand = ~excl
        ranked = work.masked_fill(excl, -math.inf)
    else:
        cand = torch.ones_like(pos)
        ranked = work
    neg = cand & ~pos
    n_pos = pos.sum(dim=1)  # int64 [B]
    has_pos = n_pos > 0

    # One top-k for the largest cut-off serves every smaller one.  If k exceeds the number of items,
    # every item is ranked and the smaller lists are simply prefixes.
    k_max = min(ks_[-1], n)
    top_idx = torch.topk(ranked, k_max, dim=1, largest=True, sorted=True).indices
    del ranked  # the masked copy is not needed for AUC; free it before AUC's own temporaries
    hits = pos.gather(1, top_idx)  # [B, K] bool; excluded items that fill short lists are never hits
    cum_hits = hits.to(torch.int64).cumsum(dim=1)  # integer cumsum: exact and deterministic

    positions = torch.arange(k_max, device=device)
    discount = 1.0 / torch.log2(positions.to(torch.float64) + 2.0)  # gain of rank r = 1/log2(r+1)
    gains = hits.to(torch.float64) * discount
    ideal_cum = discount.cumsum(dim=0)  # IDCG for 1..K relevant items
    # 0-based position of the first hit, k_max if there is none (min over masked positions, rather than
    # argmax, so the answer does not depend on argmax's tie rule).
    first_hit = torch.where(hits, positions, k_max).amin(dim=1) if k_max > 0 else n_pos.new_full((b,), 0)

    nan = torch.tensor(math.nan, dtype=torch.float64, device=device)
    n_pos_f = n_pos.to(torch.float64)
    out: dict[str, Tensor] = {}
    per_k: dict[int, dict[str, Tensor]] = {}
    for k in ks_:
        kk = min(k, k_max)
        hits_k = cum_hits[:, kk - 1].to(torch.float64) if kk > 0 else n_pos_f.new_zeros(b)
        dcg = gains[:, :kk].sum(dim=1)
        ideal_len = n_pos.clamp(min=1, max=max(kk, 1))
        idcg = ideal_cum[ideal_len - 1] if kk > 0 else n_pos_f.new_ones(b)
        per_k[k] = {
            "ndcg": dcg / idcg,
            "recall": hits_k / n_pos_f.clamp(min=1),
            "hr": (hits_k > 0).to(torch.float64),
            "mrr": torch.where(first_hit < kk, 1.0 / (first_hit.to(torch.float64) + 1.0), 0.0),
            "precision": hits_k / k,
        }
    for m in TOPK_METRICS:
        for k in ks_:
            out[f"{m}@{k}"] = torch.where(has_pos, per_k[k][m], nan).to(dtype)
    out["auc"] = torch.where(has_pos, _auc(work, pos, neg), nan).to(dtype)
    return out


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

    def __init__(self, ks: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ks: tuple[int, ...] = normalize_ks(ks)
        self.names: list[str] = metric_names(self.ks)
        m = len(self.names)
        self.add_state("sums", default=torch.zeros(m, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", default=torch.zeros(m, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor, exclude: Tensor | None = None) -> None:
        """Add one chunk of users; see :func:`ranking_metrics` for the argument conventions."""
        values = ranking_metrics(scores, targets, exclude, self.ks)
        stacked = torch.stack([values[name].to(torch.float64) for name in self.names])  # [M, B]
        valid = ~torch.isnan(stacked)
        self.sums += torch.where(valid, stacked, 0.0).sum(dim=1).to(self.sums.device)
        self.counts += valid.sum(dim=1).to(self.counts.device)

    def compute(self) -> dict[str, Tensor]:
        """Mean over all non-NaN users per metric; NaN for a metric that no user could be scored on."""
        means = (self.sums / self.counts.to(torch.float64)).to(torch.float32)
        return {name: means[i] for i, name in enumerate(self.names)}
