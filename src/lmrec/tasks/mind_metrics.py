"""The MIND leaderboard metrics: mean over impressions of AUC, MRR, nDCG@5 and nDCG@10, as the official
evaluation script (`evaluate.py` of the MIND competition) computes them, vectorised over a batch of impressions.

What the official script does, and what is matched here:

* It reads a *rank* per candidate (1 = shown first) and scores each candidate 1/rank, so within an impression the
  scores are a permutation and nothing is tied. lmrec turns model scores into such ranks first (descending score),
  breaking exact ties by `ties`: `random` (a seeded key per candidate, fixed when the evaluation set is built, so
  every run breaks them alike: a constant model gets chance-level values) or `pessimistic` (a clicked candidate
  ranks after every unclicked one it ties with: a lower bound). The numbers below are then exactly the script's
  on the submission those ranks make.
* AUC: sklearn's `roc_auc_score` of the clicks against 1/rank: the share of (clicked, unclicked) pairs whose
  clicked candidate ranks first.
* MRR: the sum of 1/rank over the clicked candidates, divided by the number of clicks (every click counts, not
  only the first: an impression whose every candidate is clicked scores below 1).
* nDCG@k: DCG = sum over the top k of (2^label - 1) / log2(rank + 1), divided by the DCG of the clicks ranked
  first (binary labels: min(clicks, k) leading gains).
* Each metric is averaged over impressions with equal weight.
* An impression with only clicked or only unclicked candidates stops the official script (its AUC is undefined);
  the evaluation dataset refuses or skips such impressions (`task.single_class`, `lmrec.data.impressions`), so
  every impression reaching these functions has both classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from lmrec.errors import ConfigError

__all__ = ["TIES", "ImpressionMetricAccumulator", "candidate_ranks", "impression_metric_names", "impression_metrics"]

#: How exact score ties inside an impression are ordered before ranking.
TIES = ("random", "pessimistic")
PREFIX = "impression"


def impression_metric_names(ks: Sequence[int] = (5, 10)) -> list[str]:
    """`impression/auc`, `impression/mrr`, `impression/ndcg@5`, ...: labelled so they never pass for the
    full-ranking metrics of the same names."""
    return [f"{PREFIX}/auc", f"{PREFIX}/mrr", *(f"{PREFIX}/ndcg@{k}" for k in ks)]


def check_ties(ties: str) -> str:
    if ties not in TIES:
        raise ConfigError(f"task.ties={ties!r}; expected one of {', '.join(map(repr, TIES))}")
    return ties


def _rank_order(scores: Tensor, labels: Tensor, segments: Tensor, tiebreak: Tensor, ties: str) -> Tensor:
    """The candidates in (impression, rank) order: by segment, then descending score, exact ties by `ties`.
    Three stable sorts instead of a lexsort, which torch lacks."""
    check_ties(ties)
    if torch.isnan(scores).any():
        raise ValueError("a model returned NaN scores for impression candidates")
    key = labels.to(torch.float64) if ties == "pessimistic" else tiebreak.to(torch.float64)
    order = torch.sort(key, stable=True).indices
    order = order[torch.sort(scores[order], descending=True, stable=True).indices]
    return order[torch.sort(segments[order], stable=True).indices]


def _segment_starts(segments: Tensor) -> Tensor:
    lengths = torch.bincount(segments)
    return torch.cumsum(lengths, 0) - lengths


def candidate_ranks(scores: Tensor, labels: Tensor, segments: Tensor, tiebreak: Tensor, ties: str) -> Tensor:
    """1-based rank of each candidate inside its impression (`segments`), by descending score; exact ties ordered
    by `ties`. These are the ranks an official submission file lists."""
    order = _rank_order(scores, labels, segments, tiebreak, ties)
    ranks = torch.empty_like(segments)
    ranks[order] = torch.arange(len(order), device=segments.device) - _segment_starts(segments)[segments[order]] + 1
    return ranks


def impression_metrics(
    scores: Tensor, labels: Tensor, segments: Tensor, tiebreak: Tensor, ties: str, ks: Sequence[int] = (5, 10)
) -> dict[str, Tensor]:
    """Per-impression metrics (float64 [number of impressions]) keyed by `impression_metric_names(ks)`.

    `scores`, `labels` (0/1), `segments` (the impression of each candidate, 0..B-1) and `tiebreak` are aligned
    per candidate; every impression must hold a clicked and an unclicked candidate.
    """
    order = _rank_order(scores, labels, segments, tiebreak, ties)
    segment = segments[order]  # everything below is in (impression, rank) order
    clicked = labels[order].to(torch.float64)
    starts = _segment_starts(segments)
    ranks = (torch.arange(len(order), device=segments.device) - starts[segment] + 1).to(torch.float64)
    n = len(starts)
    total = torch.zeros(n, dtype=torch.float64, device=scores.device)
    positives = total.index_add(0, segment, clicked)
    negatives = torch.bincount(segment, minlength=n).to(torch.float64) - positives
    clicks_ahead = torch.cumsum(clicked, 0) - clicked
    clicks_ahead = clicks_ahead - clicks_ahead[starts][segment]
    # A click at rank r has r - 1 - (clicks ahead of it) unclicked candidates ahead; it beats the others.
    beaten = (negatives[segment] - (ranks - 1 - clicks_ahead)) * clicked
    out = {
        f"{PREFIX}/auc": total.index_add(0, segment, beaten) / (positives * negatives),
        f"{PREFIX}/mrr": total.index_add(0, segment, clicked / ranks) / positives,
    }
    gain = clicked / torch.log2(ranks + 1)
    longest = int(positives.max()) if n else 0
    ideal_gains = 1 / torch.log2(torch.arange(2, longest + 2, device=scores.device, dtype=torch.float64))
    ideal_table = torch.cumsum(ideal_gains, 0)
    for k in ks:
        dcg = total.index_add(0, segment, gain * (ranks <= k))
        out[f"{PREFIX}/ndcg@{k}"] = dcg / ideal_table[(positives.clamp(max=k) - 1).long()]
    return out


class ImpressionMetricAccumulator(Metric):
    """Sums of the per-impression metrics and the impression count (summed across processes, so a multi-process
    evaluation gives the single-process means exactly)."""

    full_state_update = False

    def __init__(self, ks: Sequence[int] = (5, 10), ties: str = "random") -> None:
        super().__init__()
        self.ks, self.ties = tuple(int(k) for k in ks), check_ties(ties)
        self.names = impression_metric_names(self.ks)
        self.add_state("sums", torch.zeros(len(self.names), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        scores: Tensor | None = None,
        labels: Tensor | None = None,
        segments: Tensor | None = None,
        tiebreak: Tensor | None = None,
        *,
        values: dict[str, Tensor] | None = None,
    ) -> None:
        """Add one batch of impressions, or its per-impression `values` computed already (`impression_metrics`,
        which a caller that also keeps each impression's values computes once)."""
        if values is None:
            if segments is None or len(segments) == 0:
                return
            values = impression_metrics(scores.float(), labels, segments, tiebreak, self.ties, self.ks)
        if not values:
            return
        self.sums += torch.stack([values[name].sum() for name in self.names])
        self.count += len(values[self.names[0]])

    def compute(self) -> dict[str, Tensor]:
        return {name: self.sums[i] / self.count for i, name in enumerate(self.names)}
