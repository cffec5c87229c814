"""`model=ease`: EASE (Steck, WWW 2019), the closed-form item-item linear model, the strongest classic baseline on
MovieLens-style data. B = argmin ‖X − XB‖² + λ‖B‖² subject to diag(B) = 0, solved as P = (XᵀX + λI)⁻¹,
B = −P / diag(P) with a zero diagonal; a user's scores are X_u B.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from lmrec.config.schema import Number, Option, check_values
from lmrec.data.sparse import CSRMatrix
from lmrec.model.baselines.base import FittedBaseline, scipy_matrix, sparse_rows


class EASE(FittedBaseline):
    """Dense [items, items] weights: memory grows with the catalogue squared (20k items: 1.6 GB in float32)."""

    config_options: ClassVar[tuple[Option, ...]] = (
        Option("l2", (Number(0.0, open_low=True),), note="the regularisation strength"),
    )

    def __init__(self, history: CSRMatrix, l2: float = 50.0) -> None:
        super().__init__()
        check_values(EASE.config_options, {"l2": l2}, "model.baseline")  # built from Python, not from a config
        self.history = history
        self.l2 = float(l2)
        n = history.shape[1]
        self.register_buffer("weights", torch.zeros(n, n))

    def gram(self) -> np.ndarray:
        """XᵀX in float64 (the inverse of a large Gram loses digits in float32). Subclasses add side information."""
        x = scipy_matrix(self.history)
        return (x.T @ x).toarray().astype(np.float64)

    def fit(self) -> None:
        gram = self.gram()
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = torch.cholesky_inverse(torch.linalg.cholesky(torch.from_numpy(gram)))
        weights = -inverse / torch.diagonal(inverse).unsqueeze(0)
        weights.fill_diagonal_(0.0)
        self.weights = weights.float()

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        rows = sparse_rows(self.history, users.cpu()).to(self.weights.device)
        return torch.sparse.mm(rows, self.weights)
