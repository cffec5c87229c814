"""Each evaluated user's (interaction's, impression's) metric values, kept beside the means: the unit of evidence.

A mean says how a model does on average; whether a 2 % gain over a baseline is noise, and on how many users it
holds, needs each user's value (paired tests, intervals, wins and losses: `lmrec.compare`). `RowRecorder` is a
torchmetrics Metric whose states are the rows themselves, concatenated across DDP ranks by torchmetrics' own sync
(`dist_reduce_fx="cat"`), so a multi-process evaluation writes exactly the rows a single process would. A task adds
one to its metric collection (`Task.make_metrics`) when per-user output is on; `rows()` returns the gathered
table of one pass before the metrics are reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

#: The key of the recorder in a task's metric collection; `Task.compute_metrics` leaves it out of the means.
ROWS = "rows"


class RowRecorder(Metric):
    """Rows of named columns: `keys` (integer ids every row has, e.g. the user index) and float `values` (NaN where
    a batch gave no value for a column). Column names may hold any character (`sampled100/ndcg@10`): states are
    named by position."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, keys: Sequence[str], values: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keys, self.values = list(keys), list(values)
        for i in range(len(self.keys)):
            self.add_state(f"key{i}", default=[], dist_reduce_fx="cat")
        for i in range(len(self.values)):
            self.add_state(f"value{i}", default=[], dist_reduce_fx="cat")

    def update(self, **columns: Tensor) -> None:
        """One batch: every key column, and any of the value columns (a missing one is NaN for these rows)."""
        if unknown := set(columns) - set(self.keys) - set(self.values):
            raise ValueError(f"columns {sorted(unknown)} are not columns of this recorder")
        size = len(columns[self.keys[0]])
        for i, name in enumerate(self.keys):
            getattr(self, f"key{i}").append(columns[name].detach().to(torch.int64).reshape(-1))
        for i, name in enumerate(self.values):
            given = columns.get(name)
            value = torch.full((size,), torch.nan, dtype=torch.float64) if given is None else given.detach()
            getattr(self, f"value{i}").append(value.to(torch.float64).reshape(-1))

    def compute(self) -> Tensor:
        """The number of rows (the table itself comes from `rows()`: a Metric's compute returns tensors)."""
        return torch.tensor(sum(len(k) for k in getattr(self, "key0", [])) if self.keys else 0)

    def rows(self) -> dict[str, np.ndarray]:
        """Every rank's rows of the pass, as numpy columns (key columns int64, value columns float64)."""
        with self.sync_context(should_sync=self._to_sync, should_unsync=True):
            out = {name: _column(getattr(self, f"key{i}"), torch.int64) for i, name in enumerate(self.keys)}
            out |= {name: _column(getattr(self, f"value{i}"), torch.float64) for i, name in enumerate(self.values)}
        return out


def _column(parts: list[Tensor] | Tensor, dtype: torch.dtype) -> np.ndarray:
    if isinstance(parts, list) and not parts:
        return np.empty(0, dtype=np.int64 if dtype == torch.int64 else np.float64)
    return dim_zero_cat(parts).to(dtype).cpu().numpy()
