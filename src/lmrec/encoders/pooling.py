"""Pooling token states into one text vector, for encoder (BERT) and decoder (GPT, Llama) models alike.

An encoder sees the whole text from every position, so the mean (or [CLS]) summarises it. A causal decoder's
position t sees only tokens up to t: only the last real token has read the whole text (`last`), and SGPT's
`weighted_mean` weights later positions more for the same reason. Every pooling reads the attention mask, not the
padding side, so left- and right-padded batches pool to the same vector.
"""

from __future__ import annotations

import torch

POOLINGS = ("mean", "cls", "last", "weighted_mean")


def last_token_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token, under left padding, right padding or none."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.bool() * (positions + 1)).argmax(dim=1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """[batch, tokens, width] token states -> [batch, width] by `pooling` (one of POOLINGS)."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last_token_positions(attention_mask)]
    mask = attention_mask.to(hidden.dtype)
    if pooling == "weighted_mean":
        # Weights 1, 2, ..., n over a row's real tokens, counted from its first real token (SGPT, Muennighoff
        # 2022), so a left-padded row gets the same weights as a right-padded one.
        mask = mask.cumsum(dim=1) * mask
    elif pooling != "mean":
        raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
    weights = mask.unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)
