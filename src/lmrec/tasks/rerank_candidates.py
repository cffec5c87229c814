"""What a reranker is given by its retriever: each user's top candidates and the retriever's scores, per split.

The retriever is a finished lmrec run (`task.retriever=<run dir>`); `lmrec.serving.candidates` loads it, scores every
user as its own evaluation does (`Task.eval_scores`: a sequence model reads the user's sequence, EASE the folded
history) and caches the result under the run's identity. This module holds the result and the pure functions a
rerank task needs around it: the split it must match, the seeded candidate orders, and the merge of reranked
candidates into a full-catalogue ranking.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from lmrec.data.interactions import SPLITS, InteractionSplits
from lmrec.errors import ConfigError


@dataclass(frozen=True)
class RetrievedCandidates:
    """A retriever's output for the splits a reranker evaluates (and trains from: `val`'s candidates)."""

    retriever: str  # the run folder, as given
    splits_sha256: str  # `splits_fingerprint` of the split the retriever was evaluated on
    top: dict[str, torch.Tensor]  # split -> [num_users, depth] item indices, best first, never a masked item
    scores: dict[str, torch.Tensor]  # split -> [num_users, num_items] the retriever's scores (float32)

    def check_matches(self, splits: InteractionSplits) -> None:
        """Refuse candidates computed on another split than the reranker's (other data, filters or seed)."""
        if splits_fingerprint(splits) != self.splits_sha256:
            raise ConfigError(
                f"task.retriever={self.retriever} was evaluated on another split than this run's (other data, "
                "filters, split strategy or seed): give the rerank run the retriever's data and seed options"
            )

    def depth(self) -> int:
        return int(next(iter(self.top.values())).shape[1])


def splits_fingerprint(splits: InteractionSplits) -> str:
    """SHA-256 over every split's user-item matrix: equal exactly when two runs hold the same split."""
    digest = hashlib.sha256()
    for name in SPLITS:
        matrix = splits.matrix(name)
        digest.update(name.encode())
        digest.update(str(matrix.shape).encode())
        digest.update(matrix.crow.numpy().astype(np.int64).tobytes())
        digest.update(matrix.col.numpy().astype(np.int64).tobytes())
    return digest.hexdigest()


def top_candidates(scores: torch.Tensor, exclude: torch.Tensor, depth: int) -> torch.Tensor:
    """[B, depth] the highest-scoring items of each row that `exclude` [B, N] does not mask, best first; -1 where a
    row has fewer scorable items (an unscorable score, NaN or -inf, never makes a candidate)."""
    masked = torch.where(exclude | ~torch.isfinite(scores), torch.tensor(float("-inf")), scores.float())
    values, items = masked.topk(min(depth, masked.shape[1]), dim=1)
    return torch.where(torch.isfinite(values), items, torch.full_like(items, -1))


def candidate_orders(seed: int, users: torch.Tensor, size: int, permutation: int, salt: int = 0) -> torch.Tensor:
    """[B, size] the order each user's candidates are shown in: a permutation seeded by (seed, user, which
    permutation, salt), the same in every run, batching and process layout."""
    rows = [np.random.default_rng([seed, int(u), permutation, salt]).permutation(size) for u in users.tolist()]
    return torch.from_numpy(np.stack(rows)) if rows else torch.empty(0, size, dtype=torch.long)


def merge_full_ranking(retriever: torch.Tensor, candidates: torch.Tensor, reranked: torch.Tensor) -> torch.Tensor:
    """[B, N] scores whose ranking is the candidates in the reranker's order, then every other item in the
    retriever's order (LlamaRec's evaluation: a user whose target was not retrieved keeps the retriever's ranks).

    Candidates are lifted above the row's best retriever score by 1 plus their reranker score scaled into [0, 1]
    (ties among them stay ties), in float64 so the lift never merges distinct scores."""
    merged = retriever.to(torch.float64).clone()
    finite = torch.where(torch.isfinite(merged), merged, torch.tensor(float("-inf"), dtype=torch.float64))
    top = finite.max(dim=1, keepdim=True).values.clamp(min=torch.finfo(torch.float32).min)
    low = reranked.min(dim=1, keepdim=True).values
    span = (reranked.max(dim=1, keepdim=True).values - low).clamp(min=1e-12)
    lifted = top + 1.0 + ((reranked - low) / span).to(torch.float64)
    return merged.scatter_(1, candidates, lifted)
