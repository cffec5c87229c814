"""Gathering rows of a CSR matrix as flat (row, position) pairs, vectorised.

torch has no batched row-slice for CSR tensors that keeps autograd on the other operand, and both the history
user tower and the evaluation batches need exactly "the entries of these rows", so this lives here once.
"""

from __future__ import annotations

import torch


def csr_row_positions(crow: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For the given rows, return (batch_row, position): the batch row of each stored entry and its index into
    the CSR value/column arrays."""
    starts, ends = crow[rows], crow[rows + 1]
    lengths = ends - starts
    batch_row = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), lengths)
    first_of_row = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    offsets = torch.arange(int(lengths.sum()), device=rows.device) - first_of_row
    return batch_row, torch.repeat_interleave(starts, lengths) + offsets


def csr_from_pairs(rows: torch.Tensor, cols: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A bool-valued CSR matrix with a True at each (row, col); duplicates are merged."""
    keys = torch.unique(rows.long() * shape[1] + cols.long())
    coo = torch.sparse_coo_tensor(
        torch.stack([keys // shape[1], keys % shape[1]]), torch.ones(len(keys)), size=shape
    ).coalesce()
    return coo.to_sparse_csr()
