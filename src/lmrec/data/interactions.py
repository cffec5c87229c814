"""The processed interactions as tensors, per split, with the sparse user x item views tasks and towers need.

This is what a task builds its batches from (`Task.train_dataset`, `Task.eval_dataset`) and what a history user
tower reads its users' training items from; it holds nothing a model could leak: each view names its splits.
"""

from __future__ import annotations

import numpy as np
import torch

from lmrec.data.processed import ProcessedData
from lmrec.data.sparse import CSRMatrix
from lmrec.data.splits import SPLIT_CODES, SPLIT_NAMES

SPLITS = tuple(SPLIT_NAMES.values())


class InteractionSplits:
    """(users, items, ratings) tensors of each split of a `ProcessedData`, and CSR matrices over chosen splits."""

    def __init__(self, data: ProcessedData) -> None:
        self.num_users, self.num_items = data.num_users, data.num_items
        # The dataset's id of each user / item index: what tasks map their own id-keyed inputs onto (impressions).
        self.user_ids = data.users["user_id"].to_numpy()
        self.item_ids = data.items["item_id"].to_numpy()
        frame = data.interactions
        self._tensors = {}
        self._timestamps: dict[str, torch.Tensor] = {}
        self._rows: dict[str, torch.Tensor] = {}
        self._matrices: dict[tuple[str, ...], CSRMatrix] = {}
        codes = frame["split"].to_numpy()
        for name, code in SPLIT_CODES.items():
            chosen = codes == code
            part = frame[chosen]
            self._tensors[name] = (
                torch.tensor(part["user_idx"].to_numpy(np.int64)),
                torch.tensor(part["item_idx"].to_numpy(np.int64)),
                torch.tensor(part["rating"].to_numpy(np.float32)),
            )
            # A table without times (a hand-built test frame) orders each user's items by table row alone.
            times = part["timestamp"].to_numpy(np.int64) if "timestamp" in part else np.zeros(len(part), np.int64)
            self._timestamps[name] = torch.from_numpy(np.ascontiguousarray(times).copy())
            self._rows[name] = torch.from_numpy(np.flatnonzero(chosen))

    def tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(user index, item index, rating) of every interaction in `split`, in table order."""
        return self._tensors[split]

    def timestamps(self, split: str) -> torch.Tensor:
        """The timestamp of each interaction of `split`, aligned with `tensors(split)`."""
        return self._timestamps[split]

    def rows(self, split: str) -> torch.Tensor:
        """Each interaction's row in the processed table: the tie order among equal timestamps."""
        return self._rows[split]

    def size(self, split: str) -> int:
        return len(self._tensors[split][0])

    def matrix(self, *splits: str) -> CSRMatrix:
        """CSR [users, items] of the interactions in the given splits. Built once per combination: the splits never
        change, and evaluation passes and every served request (the seen items, a folded test-time history) ask for
        the same ones again. Treat it as read-only."""
        if splits not in self._matrices:
            users = torch.cat([self._tensors[s][0] for s in splits])
            items = torch.cat([self._tensors[s][1] for s in splits])
            self._matrices[splits] = CSRMatrix.from_pairs(users, items, (self.num_users, self.num_items))
        return self._matrices[splits]
