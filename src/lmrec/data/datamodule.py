"""The LightningDataModule: processed tables -> tensors -> batches for the chosen task."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler

from lmrec.data.batches import (
    InteractionBatches,
    NegativeSampledBatches,
    RankingEvalBatches,
    identity_collate,
)
from lmrec.data.export import export_split
from lmrec.data.processed import ProcessedData, load_processed
from lmrec.data.splits import TEST, TRAIN, VAL
from lmrec.errors import ConfigError
from lmrec.sparse import CSRMatrix

log = logging.getLogger(__name__)

TASK_KINDS = ("rating", "ranking")


class RecDataModule(pl.LightningDataModule):
    """Loads (or reads cached) processed tables once, then serves the batches the task needs.

    Loading happens in `prepare()`, called by the entry point before the model is built, because the model's
    sizes (users, items) and item texts come from the data.
    """

    def __init__(
        self,
        root: str,
        cache_dir: str | None,
        task_kind: str = "rating",
        text: dict | None = None,
        split: dict | None = None,
        seed: int = 42,
        batch_size: int = 1024,
        eval_batch_size: int = 256,
        num_negatives: int = 4,
        num_workers: int = 0,
        drop_invalid: bool = False,
        verify_checksums: bool = True,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
        max_users: int | None = None,
        export_split_dir: str | None = None,
    ) -> None:
        super().__init__()
        if task_kind not in TASK_KINDS:
            raise ConfigError(f"task kind {task_kind!r}; expected one of {TASK_KINDS}")
        if batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size}, data.eval_batch_size={eval_batch_size}; expected >= 1")
        if int(num_negatives) < 1:
            raise ConfigError(f"data.num_negatives={num_negatives}; expected at least 1")
        if max_users is not None and int(max_users) < 1:
            raise ConfigError(f"data.max_users={max_users}; expected a positive number of users, or null for all")
        if not rating_min < rating_max:
            raise ConfigError(f"data.rating_min={rating_min} must be below data.rating_max={rating_max}")
        text = dict(text or {})
        split = dict(split or {})
        self.root = Path(root)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.task_kind = task_kind
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_negatives = num_negatives
        self.num_workers = num_workers
        self.verify_checksums = verify_checksums
        self.export_split_dir = export_split_dir
        self.options: dict[str, Any] = {
            "template": list(text.get("template", ["{title}", "Genres: {genres}", "Tags: {tags}"])),
            "separator": str(text.get("separator", ". ")),
            "max_tags": int(text.get("max_tags", 5)),
            "split": str(split.get("strategy", "random")),
            "ratios": [float(r) for r in split.get("ratios", [8, 1, 1])],
            "seed": int(seed),
            "drop_invalid": bool(drop_invalid),
            "rating_min": float(rating_min),
            "rating_max": float(rating_max),
            "max_users": int(max_users) if max_users is not None else None,
        }
        self.data: ProcessedData | None = None

    # -- loading --------------------------------------------------------------------------------------------
    def prepare(self) -> ProcessedData:
        """Load the processed tables (idempotent) and build the tensors every split needs."""
        if self.data is not None:
            return self.data
        self.data = load_processed(self.root, self.cache_dir, self.options, verify=self.verify_checksums)
        frame = self.data.interactions
        self._split_tensors = {
            code: (
                torch.tensor(part["user_idx"].to_numpy(np.int64)),
                torch.tensor(part["item_idx"].to_numpy(np.int64)),
                torch.tensor(part["rating"].to_numpy(np.float32)),
            )
            for code, part in ((c, frame[frame["split"] == c]) for c in (TRAIN, VAL, TEST))
        }
        for code, name in ((TRAIN, "train"), (VAL, "val"), (TEST, "test")):
            if len(self._split_tensors[code][0]) == 0:
                raise ConfigError(
                    f"the {name} split is empty (data.split={self.options['split']}, ratios={self.options['ratios']});"
                    " training, validation-based checkpointing and testing each need interactions"
                )
        if self.export_split_dir:
            written = export_split(self.data, Path(self.export_split_dir))
            log.info("exported split to %s", ", ".join(str(p) for p in written.values()))
        return self.data

    @property
    def num_users(self) -> int:
        return self.prepare().num_users

    @property
    def num_items(self) -> int:
        return self.prepare().num_items

    @property
    def item_texts(self) -> list[str]:
        return self.prepare().items["text"].tolist()

    @property
    def template_id(self) -> str:
        """What the text template and its options are, for the embedding cache key."""
        opts = self.options
        return repr((opts["template"], opts["separator"], opts["max_tags"]))

    def interaction_matrix(self, *codes: int) -> CSRMatrix:
        """CSR [users, items] of the interactions in the given splits."""
        self.prepare()
        users = torch.cat([self._split_tensors[c][0] for c in codes])
        items = torch.cat([self._split_tensors[c][1] for c in codes])
        return CSRMatrix.from_pairs(users, items, (self.num_users, self.num_items))

    def train_history(self) -> CSRMatrix:
        return self.interaction_matrix(TRAIN)

    def statistics(self) -> dict[str, float]:
        """What a reader needs to judge a result: size, sparsity, and how long the item texts are."""
        data = self.prepare()
        n = len(data.interactions)
        words = data.items["text"].str.split().str.len()
        counts = data.interactions["split"].value_counts()
        return {
            "users": data.num_users,
            "items": data.num_items,
            "interactions": n,
            "density": n / max(1, data.num_users * data.num_items),
            "train_interactions": int(counts.get(TRAIN, 0)),
            "val_interactions": int(counts.get(VAL, 0)),
            "test_interactions": int(counts.get(TEST, 0)),
            "text_words_mean": float(words.mean()) if len(words) else 0.0,
            "text_words_max": int(words.max()) if len(words) else 0,
        }

    # -- Lightning hooks ------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle if sampler is None else False,
            sampler=sampler,
            collate_fn=identity_collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    @staticmethod
    def _eval_sampler(dataset: Dataset) -> Sampler | None:
        """Under DDP, each user (or row) is evaluated on exactly one rank.

        Lightning's default DistributedSampler pads ranks to equal length by repeating samples, which would count
        some users twice in the synced metric sums; evaluation then would not equal the single-process numbers.
        """
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return UnrepeatedDistributedSampler(dataset, shuffle=False)
        return None

    def train_dataloader(self) -> DataLoader:
        users, items, ratings = self._split_tensors[TRAIN]
        if self.task_kind == "rating":
            dataset = InteractionBatches(users, items, ratings)
        else:
            dataset = NegativeSampledBatches(users, items, self.num_items, self.num_negatives)
        return self._loader(dataset, self.batch_size, shuffle=True)

    def _eval_loader(self, code: int) -> DataLoader:
        if self.task_kind == "rating":
            dataset: Dataset = InteractionBatches(*self._split_tensors[code])
        else:
            seen = (TRAIN,) if code == VAL else (TRAIN, VAL)
            dataset = RankingEvalBatches(self.interaction_matrix(code), self.interaction_matrix(*seen))
        return self._loader(dataset, self.eval_batch_size, shuffle=False, sampler=self._eval_sampler(dataset))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(VAL)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(TEST)
