"""Heads score a (user, item) pair from the two tower vectors; each returns a logit.

Tasks turn the logit into a prediction (a sigmoid mapped onto the rating range, or a ranking score), so one
head serves both explicit ratings and implicit feedback. `score_all(u, item_vectors, users, items=None)` scores
users against a set of items (the whole catalogue for full-ranking evaluation and full softmax, a batch's distinct
items for in-batch negatives) without a Python loop.
"""

from __future__ import annotations

import torch
from torch import nn

from lmrec.config.schema import POSITIVE, ListOf, Number, Option, check_values


class DotHead(nn.Module):
    """logit = <u, i> + b_u + b_i + b; with the rating task ŷ = σ(logit), the classic min Σ (r − σ(<V_u, V_i>))²."""

    def __init__(self, num_users: int, num_items: int, biases: bool = True) -> None:
        super().__init__()
        self.biases = biases
        if biases:
            self.user_bias = nn.Embedding(num_users, 1)
            self.item_bias = nn.Embedding(num_items, 1)
            self.global_bias = nn.Parameter(torch.zeros(1))
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)

    #: The score is linear in the user vector: a sum of user-vector terms splits the score exactly (explanations).
    linear_in_user = True

    def constant(self, item: int, user: int | None = None) -> float:
        """The part of a score that is not <u, i>: the item's (and a training user's) bias and the global bias."""
        if not self.biases:
            return 0.0
        total = self.item_bias.weight[item, 0] + self.global_bias[0]
        return float(total + (self.user_bias.weight[user, 0] if user is not None else 0.0))

    def forward(self, u: torch.Tensor, i: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        logit = (u * i).sum(-1)
        if self.biases:
            logit = logit + self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1) + self.global_bias
        return logit

    def score_all(
        self, u: torch.Tensor, item_vectors: torch.Tensor, users: torch.Tensor, items: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scores [users, rows of item_vectors]; `items` names those rows (None: the whole catalogue, in order).
        `users` None: users the model never trained on (served from a history), who have no bias of their own."""
        scores = u @ item_vectors.T
        if self.biases:
            item_bias = self.item_bias.weight.T if items is None else self.item_bias(items).T
            scores = scores + item_bias + self.global_bias
            if users is not None:
                scores = scores + self.user_bias(users)
        return scores


class MLPHead(nn.Module):
    """An MLP over [u, i, u ⊙ i] (NCF-style), for interactions a dot product cannot express."""

    # torch would stop with a bare RuntimeError from nn.Linear for a width below 1
    config_options = (
        Option("hidden", (ListOf(POSITIVE),), note="the MLP's layer widths"),
        Option("dropout", (Number(0.0, 1.0, open_high=True),)),
    )

    def __init__(self, dim: int, hidden: tuple[int, ...] | list[int] = (128, 64), dropout: float = 0.1) -> None:
        super().__init__()
        check_values(self.config_options, {"hidden": list(hidden), "dropout": dropout}, "model.head")  # from Python
        self.dim = dim
        widths = [3 * dim, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU(), nn.Dropout(dropout)]
        self.first = layers[0]
        self.rest = nn.Sequential(*layers[1:], nn.Linear(widths[-1], 1))

    def forward(self, u: torch.Tensor, i: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(torch.cat([u, i, u * i], dim=-1))).squeeze(-1)

    def score_all(
        self,
        u: torch.Tensor,
        item_vectors: torch.Tensor,
        users: torch.Tensor,
        items: torch.Tensor | None = None,
        chunk: int = 1024,
    ) -> torch.Tensor:
        """Scores [users, rows of item_vectors] (the head has no per-item parameters, so `items` is not needed).

        The first layer splits as W_u·u + W_i·i + W_p·(u⊙i): the first two are computed once per user and item."""
        d = self.dim
        w = self.first.weight
        user_part = u @ w[:, :d].T + self.first.bias  # [B, H]
        item_part = item_vectors @ w[:, d : 2 * d].T  # [N, H]
        w_prod = w[:, 2 * d :]  # [H, d]
        out = torch.empty(u.shape[0], item_vectors.shape[0], device=u.device, dtype=user_part.dtype)
        for start in range(0, item_vectors.shape[0], chunk):
            items = item_vectors[start : start + chunk]
            pair = (u.unsqueeze(1) * items.unsqueeze(0)) @ w_prod.T  # [B, C, H]
            hidden = pair + user_part.unsqueeze(1) + item_part[start : start + chunk].unsqueeze(0)
            out[:, start : start + chunk] = self.rest(hidden).squeeze(-1)
        return out
