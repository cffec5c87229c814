"""Adaptors between frozen text vectors and the rest of the model (UniSRec, Hou et al. KDD 2022).

A frozen encoder's vectors live in a space shaped by its pretraining, not by the recommendation task: they are
anisotropic (most of them point one way) and every item domain occupies its own corner of that space. UniSRec's
answer is a small learned map in between: parametric whitening, (x - b) W, which centres and rotates the vectors,
or a mixture of several such maps chosen per item by a gate, so that items of different kinds can be adapted
differently. `build_adaptor` builds the map `model.item_tower.adaptor` names.

These are a few lines each and exist in no library lmrec depends on; UniSRec's own code is not a package.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from lmrec.errors import ConfigError

#: The kinds `model.item_tower.adaptor` accepts.
ADAPTORS = ("linear", "whitening", "moe")


def _init_map(weight: torch.Tensor, init_std: float | None) -> None:
    """Normal(0, init_std) when given (as BERT and SASRec initialise linear maps), else torch's nn.Linear default."""
    if init_std is None:
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    else:
        nn.init.normal_(weight, std=float(init_std))


class ParametricWhitening(nn.Module):
    """x -> (x - b) W with a learned shift b (in_dim) and a learned map W, and no bias after the map.

    Whitening a fixed set of vectors would subtract their mean and multiply by the inverse square root of their
    covariance; here b and W are learned with the model instead. `weight` has nn.Linear's layout [out_dim, in_dim],
    so `model.init_from` a run with the linear adaptor can start W from that run's projection. b starts at zero:
    at initialisation the map is a linear map without bias.
    """

    def __init__(self, in_dim: int, out_dim: int, init_std: float | None = None) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(in_dim))
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        _init_map(self.weight, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x - self.shift, self.weight)


class MoEAdaptor(nn.Module):
    """A mixture of `experts` parametric whitenings: out = sum_k g_k(x) e_k(x), g(x) = softmax(x W_g [+ noise]).

    The gate reads the text vector itself, so each item picks its own blend of experts. With `noisy_gating`, each
    gate logit gets Gaussian noise of a learned, input-dependent scale softplus(x W_n) while training (never in
    evaluation), so that early in training every expert gets items to learn from (noisy gating, Shazeer et al.
    2017). The gate weights start at zero: every expert has weight 1/experts at initialisation.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        experts: int = 8,
        noisy_gating: bool = True,
        init_std: float | None = None,
    ) -> None:
        super().__init__()
        self.experts = nn.ModuleList(ParametricWhitening(in_dim, out_dim, init_std) for _ in range(int(experts)))
        self.gate = nn.Parameter(torch.zeros(in_dim, int(experts)))
        self.noise = nn.Parameter(torch.zeros(in_dim, int(experts))) if noisy_gating else None

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """[..., experts]: each vector's expert weights (non-negative, summing to 1)."""
        logits = x @ self.gate
        if self.noise is not None and self.training:
            logits = logits + torch.randn_like(logits) * F.softplus(x @ self.noise)
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One expert at a time rather than one stacked [..., experts, in_dim] tensor: over a whole catalogue the
        # stack would hold `experts` copies of the text table.
        gates = self.gates(x)
        out = gates[..., :1] * self.experts[0](x)
        for k in range(1, len(self.experts)):
            out = out + gates[..., k : k + 1] * self.experts[k](x)
        return out


def build_adaptor(kind: str, in_dim: int, out_dim: int, experts: int = 8, init_std: float | None = None) -> nn.Module:
    """The map from text vectors (in_dim) to model vectors (out_dim) that `model.item_tower.adaptor` names.

    `linear` is the text tower's original projection (an nn.Linear, with Normal(0, init_std) weights and a zero
    bias when init_std is given), kept exactly so runs trained before the adaptors existed still load.
    """
    if kind not in ADAPTORS:
        raise ConfigError(f"model.item_tower.adaptor={kind!r}; expected one of {', '.join(ADAPTORS)}")
    if isinstance(experts, bool) or not isinstance(experts, int) or experts < 1:
        raise ConfigError(
            f"model.item_tower.experts={experts!r} (model.item_tower.adaptor={kind}); expected a positive integer"
        )
    if kind == "whitening":
        return ParametricWhitening(in_dim, out_dim, init_std)
    if kind == "moe":
        return MoEAdaptor(in_dim, out_dim, experts, init_std=init_std)
    projection = nn.Linear(in_dim, out_dim)
    if init_std is not None:
        nn.init.normal_(projection.weight, std=float(init_std))
        nn.init.zeros_(projection.bias)
    return projection
