"""The losses of the ranking objectives, as plain functions of score tensors (so each is checked by hand).

Why softmax: the text-based recommenders this framework compares against (MoRec, Recformer, UniSRec) train with
cross-entropy over many negatives, which optimises the whole ranking of the catalogue rather than one pair at a
time; BPR against a handful of uniform negatives learns mostly to push down items nobody would rank anyway.
Why logQ: negatives drawn with probability q(i) over-represent popular items, so their logits are lowered by
log q(i) (Bengio & Senecal 2008; Yi et al. 2019) to make the sampled softmax an unbiased estimate of the full one.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def pairwise_loss(kind: str, positive: torch.Tensor, negative: torch.Tensor, valid: torch.Tensor | None = None):
    """`bpr` (−log σ(s⁺ − s⁻)) or `bce` (BCE of s⁺ against 1 plus BCE of s⁻ against 0), each a mean over the
    (row, negative) pairs; `valid` [B, n] drops pairs whose negative is the row's own positive."""
    if kind == "bpr":
        terms = -F.logsigmoid(positive.unsqueeze(1) - negative)
        return terms.mean() if valid is None else _masked_mean(terms, valid)
    positive_term = F.binary_cross_entropy_with_logits(positive, torch.ones_like(positive))
    if valid is None:
        return positive_term + F.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative))
    terms = F.binary_cross_entropy_with_logits(negative, torch.zeros_like(negative), reduction="none")
    return positive_term + _masked_mean(terms, valid)


def _masked_mean(terms: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return (terms * valid).sum() / valid.sum().clamp_min(1)


def sampled_softmax_loss(
    positive: torch.Tensor,
    negative: torch.Tensor,
    temperature: torch.Tensor | float = 1.0,
    log_q_positive: torch.Tensor | None = None,
    log_q_negative: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy of the positive (column 0) against its row's negatives: logits s/τ − log q(i) when the
    sampling probabilities are given; negatives with `valid` False (accidental hits) are left out."""
    logits = torch.cat([positive.unsqueeze(1), negative], dim=1) / temperature
    if log_q_positive is not None and log_q_negative is not None:
        logits = logits - torch.cat([log_q_positive.unsqueeze(1), log_q_negative], dim=1)
    if valid is not None:
        keep = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1)
        logits = logits.masked_fill(~keep, float("-inf"))
    return F.cross_entropy(logits, torch.zeros(len(positive), dtype=torch.long, device=positive.device))


def candidate_softmax_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    temperature: torch.Tensor | float = 1.0,
    log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy over a shared candidate set [B, C] (the catalogue, or the batch's distinct positive items),
    `target` [B] naming each row's positive column; `log_q` [C] the candidates' sampling log-probabilities."""
    logits = logits / temperature
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    return F.cross_entropy(logits, target)
