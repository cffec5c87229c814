"""Top-K metric values from hit flags: the arithmetic shared by full and sampled ranking (RecBole's definitions).

``hits`` is ``[B, K]``: whether the item at each of a user's first ``K`` ranks is a target. Full ranking gets it
from one gather over its top-K indices; sampled ranking from the ranks of the targets in their candidate lists.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["TOPK_METRICS", "hits_from_ranks", "topk_values"]

#: Metric families evaluated at every cut-off ``k``, in the order :func:`lmrec.tasks.metrics.metric_names` lists them.
TOPK_METRICS: tuple[str, ...] = ("ndcg", "recall", "hr", "mrr", "precision")


def hits_from_ranks(ranks: Tensor, rows: Tensor, b: int, k_max: int) -> Tensor:
    """bool ``[b, k_max]`` hit flags from the 1-based ``ranks`` of targets that belong to batch ``rows``."""
    hits = torch.zeros((b, k_max), dtype=torch.bool, device=ranks.device)
    inside = ranks <= k_max
    hits[rows[inside], ranks[inside] - 1] = True
    return hits


def topk_values(hits: Tensor, n_pos: Tensor, ks: tuple[int, ...], k_max: int) -> dict[str, Tensor]:
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
