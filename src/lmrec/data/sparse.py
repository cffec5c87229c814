"""A minimal CSR (compressed sparse row) matrix of user -> item interactions, with vectorised row gathers.

torch's sparse CSR tensors are a beta API that warns on creation and has no batched row slice that keeps
autograd on the other operand; the history user tower and the evaluation batches only need "the columns of
these rows", which two index tensors provide directly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class CSRMatrix(NamedTuple):
    """Which items each user interacted with: row offsets into a flat, row-sorted column array."""

    crow: torch.Tensor  # [num_rows + 1] offsets into col
    col: torch.Tensor  # [nnz] column of each stored entry, sorted within a row
    shape: tuple[int, int]

    @classmethod
    def from_pairs(cls, rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]) -> CSRMatrix:
        """One entry per distinct (row, col) pair."""
        keys = torch.unique(rows.long() * shape[1] + cols.long())  # sorted: by row, then by column
        counts = torch.bincount(keys // shape[1], minlength=shape[0])
        crow = torch.zeros(shape[0] + 1, dtype=torch.long)
        crow[1:] = torch.cumsum(counts, 0)
        return cls(crow, keys % shape[1], (int(shape[0]), int(shape[1])))

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> CSRMatrix:
        """A matrix with no stored entry (e.g. an exclusion mask that masks nothing)."""
        return cls(torch.zeros(shape[0] + 1, dtype=torch.long), torch.empty(0, dtype=torch.long), shape)

    def row_lengths(self) -> torch.Tensor:
        return self.crow.diff()

    def row_positions(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch_row, position) of every stored entry of `rows`: its row within the batch and its index into col."""
        starts = self.crow[rows]
        lengths = self.crow[rows + 1] - starts
        batch_row = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lengths)
        first_of_row = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
        offsets = torch.arange(int(lengths.sum()), device=rows.device) - first_of_row
        return batch_row, torch.repeat_interleave(starts, lengths) + offsets

    def dense_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Bool [len(rows), num_cols] with True where an entry is stored."""
        batch_row, positions = self.row_positions(rows)
        dense = torch.zeros(len(rows), self.shape[1], dtype=torch.bool)
        dense[batch_row, self.col[positions]] = True
        return dense
