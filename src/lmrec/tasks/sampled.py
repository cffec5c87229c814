"""Sampled ranking (`task.sampled_eval`): each user's targets ranked against sampled negatives, not the catalogue.

The protocol is RecBole's (``uni100`` / ``pop100``): for every evaluated positive of a user, ``N`` negatives are
drawn (with replacement), and the user's positives and all their negatives form one candidate list, on which the
usual top-K metrics are computed per user and averaged over users. Under leave-one-out (one positive per user)
this is exactly the "1 positive vs 100 negatives" protocol of NCF and SASRec; with several positives the metric
definitions (recall over the user's targets, NDCG's ideal DCG) stay those of full ranking, so a sampled and a
full number differ only in the candidates. Metric names always carry the protocol: ``sampled100/ndcg@10``
(uniform) or ``sampled_pop100/ndcg@10`` (by training popularity).

Negatives never include any positive of the user in any split (train, validation or test), and never an item
the evaluation excludes. ``uniform`` draws over the other items; ``popularity`` in proportion to the item's number
of training interactions (items without one are never drawn). Every draw is a hash of (seed, protocol, user, slot),
so the negatives are identical across runs, batch sizes, workers and DDP ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError, DataError
from lmrec.tasks.ties import hash_keys
from lmrec.tasks.topk import hits_from_ranks, topk_values

__all__ = ["SAMPLERS", "SampledNegatives", "parse_sampled_eval", "sampled_label", "sampled_metrics"]

SAMPLERS = ("uniform", "popularity")


def sampled_label(negatives: int, sampler: str) -> str:
    """The metric-name prefix of a protocol: ``sampled100`` or ``sampled_pop100``."""
    return f"sampled{negatives}" if sampler == "uniform" else f"sampled_pop{negatives}"


def parse_sampled_eval(specs: Any) -> list[tuple[str, int, str]]:
    """`task.sampled_eval` (null, or a list of ``{negatives: N, sampler: uniform|popularity}``) as checked
    ``(label, N, sampler)`` triples, every mistake named."""
    if specs is None:
        return []
    if isinstance(specs, dict) or not isinstance(specs, Sequence) or isinstance(specs, str):
        raise ConfigError(f"task.sampled_eval={specs!r}; expected null or a list like [{{negatives: 100}}]")
    out: list[tuple[str, int, str]] = []
    for i, spec in enumerate(specs):
        where = f"task.sampled_eval[{i}]"
        if not hasattr(spec, "get") or set(spec) - {"negatives", "sampler"}:
            raise ConfigError(f"{where}={spec!r}; expected {{negatives: N, sampler: uniform|popularity}}")
        n, sampler = spec.get("negatives"), spec.get("sampler", "uniform")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{where}.negatives={n!r}; expected a positive integer")
        if sampler not in SAMPLERS:
            raise ConfigError(f"{where}.sampler={sampler!r}; expected 'uniform' or 'popularity'")
        label = sampled_label(n, sampler)
        if label in (o[0] for o in out):
            raise ConfigError(f"{where}: {label} is listed twice")
        out.append((label, n, sampler))
    return out


def _uniform01(seed: int, users: Tensor, slots: Tensor) -> Tensor:
    """float64 in [0, 1) per (user, slot): the top 53 bits of a hash key."""
    return (hash_keys(seed, users, slots) >> 9).to(torch.float64) * 2.0**-53


class SampledNegatives:
    """Batch extra of `RankingEvalBatches`: ``N`` negatives per evaluated positive, as ``{label}/rows`` (batch row)
    and ``{label}/items``, for the users of a batch. A picklable object, so DataLoader workers can run it.

    Sampling is exact without rejection: with item weights ``w`` (1, or training counts), ``C`` their cumulative
    sums and the user's positives ``p_0 < p_1 < ...``, a draw ``r`` in ``[0, W - w(P_u))`` is shifted past the
    positives whose compressed start ``C(p_j) - w(p_0..p_{j-1})`` is at most ``r``, then looked up in ``C``.
    """

    def __init__(self, label: str, negatives: int, weights: Tensor, positives: CSRMatrix, slots: Tensor, seed: int):
        """``weights`` int ``[N]``; ``positives`` every user's items in every split; ``slots`` ``[users]`` the number
        of evaluated positives per user (each gets ``negatives`` draws)."""
        self.label, self.negatives, self.seed, self.slots = label, int(negatives), int(seed), slots.to(torch.int64)
        w = weights.to(torch.int64)
        self.cum_end = torch.cumsum(w, 0)  # C(i + 1)
        self.total = int(self.cum_end[-1]) if len(w) else 0
        lengths = positives.row_lengths()
        pw = w[positives.col]
        self.crow, self.cum_pw = positives.crow, torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(pw, 0)])
        within = self.cum_pw[:-1] - self.cum_pw[torch.repeat_interleave(self.crow[:-1], lengths)]
        self.remaining = self.total - (self.cum_pw[self.crow[1:]] - self.cum_pw[self.crow[:-1]])  # W - w(P_u)
        row = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        start = (self.cum_end - w)[positives.col] - within  # compressed starts, non-decreasing within a user
        self.keys = row * (self.total + 1) + start  # globally sorted
        needy = (self.slots > 0) & (self.remaining <= 0)
        if bool(needy.any()):
            user = int(needy.nonzero()[0])
            raise DataError(f"task.sampled_eval {label}: user index {user} has no item left to sample as a negative")

    def __call__(self, users: Tensor) -> dict[str, Tensor]:
        counts = self.slots[users] * self.negatives
        rows = torch.repeat_interleave(torch.arange(len(users)), counts)
        slots = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        u = users[rows]
        r = (_uniform01(self.seed, u, slots) * self.remaining[u].to(torch.float64)).to(torch.int64)
        r = torch.minimum(r, self.remaining[u] - 1)  # float rounding can never reach the top
        passed = torch.searchsorted(self.keys, u * (self.total + 1) + r, right=True) - self.crow[u]
        shift = self.cum_pw[self.crow[u] + passed] - self.cum_pw[self.crow[u]]
        items = torch.searchsorted(self.cum_end, r + shift, right=True)
        return {f"{self.label}/rows": rows, f"{self.label}/items": items}


def sampled_metrics(
    scores: Tensor,
    targets: Tensor,
    exclude: Tensor | None,
    rows: Tensor,
    items: Tensor,
    ks: tuple[int, ...],
    *,
    ties: str,
    seed: int,
    users: Tensor,
    label: str,
) -> dict[str, Tensor]:
    """``{label/metric@k: [B]}``: each user's non-excluded targets and its sampled negatives (``rows``, ``items``)
    ranked by score, ties by the policy (``first``: by item index), top-K metrics as in full ranking."""
    b, device = len(scores), scores.device
    valid = targets & ~exclude if exclude is not None else targets
    t_rows, t_items = valid.nonzero(as_tuple=True)
    rows, items = rows.to(device), items.to(device)
    all_rows, all_items = torch.cat([t_rows, rows]), torch.cat([t_items, items])
    is_target = torch.arange(len(all_rows), device=device) < len(t_rows)
    s = scores[all_rows, all_items].to(torch.float64)
    if ties == "random":
        key = hash_keys(seed, users.to(device)[all_rows], all_items)
    elif ties == "pessimistic":
        key = all_items + is_target.to(torch.int64) * scores.shape[1]
    else:
        key = all_items
    order = torch.argsort(key, stable=True)  # lexicographic (row, score desc, key) by three stable sorts
    order = order[torch.argsort(s[order], descending=True, stable=True)]
    order = order[torch.argsort(all_rows[order], stable=True)]
    n_per_row = torch.bincount(all_rows, minlength=b)
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order), device=device)
    rank = position - (torch.cumsum(n_per_row, 0) - n_per_row)[all_rows] + 1
    k_max = ks[-1]
    hits = hits_from_ranks(rank[is_target], t_rows, b, k_max)
    n_pos = torch.bincount(t_rows, minlength=b)
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=device)
    return {f"{label}/{k}": torch.where(n_pos > 0, v, nan) for k, v in topk_values(hits, n_pos, ks, k_max).items()}
