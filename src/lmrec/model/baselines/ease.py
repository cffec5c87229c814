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
        return self.score_histories(self.history, users)

    new_users = None

    def score_histories(self, histories: CSRMatrix, rows: torch.Tensor | None = None) -> torch.Tensor:
        """X_u B for the given rows of `histories` (all of them by default): one code path for training users and
        users given by their items, so the same items give bit-identical scores."""
        rows = torch.arange(histories.shape[0]) if rows is None else rows.cpu()
        return torch.sparse.mm(sparse_rows(histories, rows).to(self.weights.device), self.weights)

    def item_neighbours(self, item: int) -> torch.Tensor:
        """B's row: how much having `item` in a history adds to every other item's score."""
        return self.weights[item]

    def contributions(self, history: torch.Tensor, item: int) -> torch.Tensor:
        """B[j, item] for each history item j: the score X_u B is their sum, exactly."""
        return self.weights[history, item]
