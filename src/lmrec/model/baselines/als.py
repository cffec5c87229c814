"""`model=als`: implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky 2008),
fitted by the `implicit` library (`pip install 'lmrec[als]'`), whose conjugate-gradient solver is the reference
implementation the field reports; lmrec only keeps the factors and scores with them.
"""

from __future__ import annotations

import torch

from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError, MissingInputError
from lmrec.model.baselines.base import FittedBaseline, scipy_matrix


class ImplicitALS(FittedBaseline):
    """Confidence 1 + alpha for every training interaction; scores are <user factors, item factors>."""

    def __init__(
        self,
        history: CSRMatrix,
        factors: int = 32,
        regularization: float = 0.04,
        alpha: float = 3.2,
        iterations: int = 15,
    ) -> None:
        super().__init__()
        if isinstance(factors, bool) or int(factors) < 1 or int(iterations) < 1:
            raise ConfigError(f"model.baseline: factors={factors} and iterations={iterations} must be at least 1")
        if not float(regularization) >= 0 or not float(alpha) > 0:
            raise ConfigError(f"model.baseline: regularization={regularization} must be >= 0, alpha={alpha} > 0")
        self.history = history
        self.options = {
            "factors": int(factors),
            "regularization": float(regularization),
            "alpha": float(alpha),
            "iterations": int(iterations),
        }
        users, items = history.shape
        self.register_buffer("user_factors", torch.zeros(users, int(factors)))
        self.register_buffer("item_factors", torch.zeros(items, int(factors)))

    def fit(self) -> None:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError:
            raise MissingInputError(
                "model=als needs the `implicit` library: pip install 'lmrec[als]' (or pip install implicit)"
            ) from None
        model = AlternatingLeastSquares(
            **self.options,
            num_threads=torch.get_num_threads(),
            random_state=torch.initial_seed() % 2**32,  # the run's seed, which Lightning gave torch
        )
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit parallelises over users itself; nested BLAS threads thrash
            model.fit(scipy_matrix(self.history).astype("float32"), show_progress=False)
        self.user_factors = torch.from_numpy(model.user_factors.copy())
        self.item_factors = torch.from_numpy(model.item_factors.copy())

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_factors[users.to(self.user_factors.device)] @ self.item_factors.T

    new_users = None

    def score_histories(self, histories: CSRMatrix) -> torch.Tensor:
        """A new user's factors solved against the fixed item factors, exactly as one ALS user step of the
        `implicit` library that fitted them (Hu, Koren and Volinsky's fold-in with implicit's confidence c = α·r):
        (YᵀY + (α − 1) Y_uᵀY_u + λI) x = α Y_uᵀ 1, then scores x Yᵀ."""
        y = self.item_factors.double()
        alpha, l2 = self.options["alpha"], self.options["regularization"]
        base = y.T @ y + l2 * torch.eye(y.shape[1], dtype=torch.float64)
        factors = []
        for row in range(histories.shape[0]):
            seen = y[histories.col[histories.crow[row] : histories.crow[row + 1]]]
            system = base + (alpha - 1) * seen.T @ seen
            factors.append(torch.linalg.solve(system, alpha * seen.sum(0)))
        return (torch.stack(factors) @ y.T).float() if factors else torch.zeros(0, y.shape[0])

    def item_neighbours(self, item: int) -> torch.Tensor:
        """Cosine similarity of the item factors."""
        y = torch.nn.functional.normalize(self.item_factors, dim=1)
        return y @ y[item]
