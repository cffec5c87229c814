"""How many users one full-ranking evaluation batch holds, from a memory budget.

A ranking evaluation batch of B users over N items holds the model's [B, N] score block plus the batch's two dense
bool rows (targets and exclusions), and one more pair of rows for each batch the DataLoader prefetches. The metric
code itself works in fixed-size chunks (`lmrec.tasks.metrics`), so its scratch memory does not grow with B. Large
batches amortise the per-batch costs (one matmul, one top-k call), so the largest B that fits the budget is the
fastest; a fixed 1024 users is 110 MB of scores on ML-20M's 27k items, but 4 GB on a 1M-item Amazon category.
"""

from __future__ import annotations

#: Bytes of one float32 score.
SCORE_BYTES = 4


def prefetched_batches(num_workers: int, prefetch_factor: int = 2) -> int:
    """Batches the DataLoader builds ahead of the one being scored (none without workers)."""
    return num_workers * prefetch_factor if num_workers > 0 else 0


def users_per_eval_batch(num_items: int, memory_mb: float, num_workers: int = 0) -> int:
    """The most users whose scores and dense rows fit in `memory_mb` (at least one; `data.eval_memory_mb` is
    checked with the data options)."""
    per_user = int(num_items) * (SCORE_BYTES + 2 * (1 + prefetched_batches(num_workers)))
    return max(1, int(float(memory_mb) * 2**20) // max(per_user, 1))
