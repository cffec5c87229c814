"""The rows the rerank task (`lmrec.tasks.rerank`) trains and evaluates on: each user's prompt history beside the
retriever's candidates, and the training rows that show a known next item among them."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from lmrec.data.sequences import UserSequences
from lmrec.tasks.rerank_candidates import candidate_orders

#: Salt of the training rows' candidate orders (evaluation orders use the permutation number alone).
TRAIN_SALT = 1


class RerankInputs:
    """Evaluation extra: each user's prompt history and the retriever's candidates and scores for one split."""

    def __init__(self, sequences: UserSequences, history: int, top: torch.Tensor, scores: torch.Tensor) -> None:
        self.sequences, self.history, self.top, self.scores = sequences, history, top, scores

    def __call__(self, users: torch.Tensor) -> dict[str, Any]:
        return {
            "history": self.sequences.last(users, self.history),
            "candidates": self.top[users],
            "retriever_scores": self.scores[users],
        }


class RerankTrainRows(Dataset):
    """Training rows: each of a user's `per_user` latest training items (while an earlier item remains to be the
    history) is a target, shown among the retriever's best other candidates with the items before it as the
    history; `target` is its position in the shown order. The candidates never hold one of the user's training
    items (the retriever's list masks them), so no later item of the user leaks into an earlier row."""

    def __init__(
        self, sequences: UserSequences, top: torch.Tensor, history: int, size: int, seed: int, per_user: int = 1
    ) -> None:
        lengths = sequences.lengths()
        users, ends = [], []
        for back in range(1, per_user + 1):  # the target is the item at position length - back
            has = torch.nonzero(lengths >= back + 1).squeeze(1)
            users.append(has)
            ends.append(lengths[has] - back)
        self.users, self.ends = torch.cat(users), torch.cat(ends)
        self.sequences, self.top, self.history, self.size, self.seed = sequences, top, history, size, seed

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        users, ends = self.users[rows], self.ends[rows]
        targets = self.sequences.items[self.sequences.crow[users] + ends]
        others = self.top[users]
        others = torch.stack([row[row != t][: self.size - 1] for row, t in zip(others, targets, strict=True)])
        shown = torch.cat([targets.unsqueeze(1), others], dim=1)
        order = candidate_orders(self.seed, rows, self.size, 0, TRAIN_SALT)  # seeded per row
        shown = shown.gather(1, order)
        return {
            "users": users,
            "history": self.sequences.window(users, ends, self.history),
            "candidates": shown,
            "target": (order == 0).float().argmax(dim=1),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])
