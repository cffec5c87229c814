"""The LightningDataModule: a source's files -> processed, split interactions -> the batches its task asks for."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler

from lmrec.config.arguments import BuildFacts, provides
from lmrec.config.schema import check_values
from lmrec.data.batches import identity_collate
from lmrec.data.card import make_card
from lmrec.data.interactions import SPLITS, InteractionSplits
from lmrec.data.leakage import check_train_history
from lmrec.data.options import (
    DATA_OPTIONS,
    FilterOptions,
    ImplicitOptions,
    KCoreOptions,
    SplitOptions,
    TextOptions,
    UserTextOptions,
    check_data_options,
    option_group,
)
from lmrec.data.processed import ProcessedData, load_processed
from lmrec.data.sequences import UserSequences, sequences_of
from lmrec.data.sources.base import Source
from lmrec.data.sparse import CSRMatrix
from lmrec.data.stats import TokenCounter, dataset_figures
from lmrec.data.texts import render_user_texts, user_text_options, validate_template
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.tasks.base import Task

log = logging.getLogger(__name__)


class RecDataModule(pl.LightningDataModule):
    """Loads (or reads cached) processed tables once, then serves the datasets the task builds from them.

    Every option is checked when the module is configured, before any file is read. Loading happens in
    `prepare()`, called by the entry point before the model is built, because the model's sizes (users, items)
    and item texts come from the data.
    """

    config_options = DATA_OPTIONS

    def __init__(
        self,
        source: Source,
        task: Task | None = None,
        cache_dir: str | None = None,
        text: TextOptions | Mapping[str, Any] | None = None,
        split: SplitOptions | Mapping[str, Any] | None = None,
        seed: int = 42,
        batch_size: int = 1024,
        eval_batch_size: int | str = 1024,
        eval_memory_mb: float = 1024.0,
        num_workers: int = 0,
        drop_invalid: bool = False,
        verify_checksums: bool = True,
        max_users: int | None = None,
        implicit: ImplicitOptions | Mapping[str, Any] | None = None,
        kcore: KCoreOptions | Mapping[str, Any] | None = None,
        filters: FilterOptions | Mapping[str, Any] | None = None,
        user_text: UserTextOptions | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        text, split = option_group(TextOptions, text, "text"), option_group(SplitOptions, split, "split")
        implicit = option_group(ImplicitOptions, implicit, "implicit")
        kcore, filters = option_group(KCoreOptions, kcore, "kcore"), option_group(FilterOptions, filters, "filters")
        given = {"batch_size": batch_size, "eval_batch_size": eval_batch_size, "eval_memory_mb": eval_memory_mb,
                 "num_workers": num_workers, "seed": seed, "drop_invalid": drop_invalid, "max_users": max_users,
                 "verify_checksums": verify_checksums, **{name: asdict(group) for name, group in
                 (("implicit", implicit), ("kcore", kcore), ("filters", filters), ("split", split))}}  # fmt: skip
        check_values(DATA_OPTIONS, given, "data")  # built from Python: the declaration a config is checked against
        self.source = source
        self.task = task
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.batch_size, self.eval_batch_size, self.eval_memory_mb = batch_size, eval_batch_size, eval_memory_mb
        self.num_workers = num_workers
        self.verify_checksums = verify_checksums
        # The processed-cache key and the data fingerprint runs record: its layout is kept as it has always been, so
        # cached tables and recorded runs stay valid.
        self.options: dict[str, Any] = {
            "template": list(text.template or source.template()),
            "separator": str(text.separator),
            "split": str(split.strategy),
            "ratios": [float(r) for r in split.ratios],
            "seed": int(seed),
            "drop_invalid": bool(drop_invalid),
            "max_users": int(max_users) if max_users is not None else None,
            "implicit_threshold": _optional_float(implicit.threshold),
            "kcore": [int(kcore.user or 0), int(kcore.item or 0)],
            "min_text_words": int(filters.min_text_words or 0),
            "require_text": bool(filters.require_text),
            "split_options": {
                "cut": [float(c) for c in split.cut] if split.cut is not None else None,
                "cold_share": float(split.cold_share),
                "cold_profile": int(split.cold_profile or 0),
                "max_history": int(split.max_history) if split.max_history is not None else None,
            },
        }
        validate_template(self.options["template"], source.item_fields, source.name)
        self.user_text = user_text_options(option_group(UserTextOptions, user_text, "user_text"), source)
        check_data_options(split)
        self.data: ProcessedData | None = None
        self.splits: InteractionSplits | None = None
        self._history: CSRMatrix | None = None

    # -- loading --------------------------------------------------------------------------------------------
    def prepare(self) -> ProcessedData:
        """Load the processed tables (idempotent) and build the tensors every split needs."""
        if self.data is not None:
            return self.data
        data = load_processed(self.source, self.cache_dir, self.options, verify=self.verify_checksums)
        splits = InteractionSplits(data)
        for name in SPLITS:
            if splits.size(name) == 0:
                raise ConfigError(
                    f"the {name} split is empty (data.split={self.options['split']}, ratios={self.options['ratios']});"
                    " training, validation-based checkpointing and testing each need interactions"
                )
        self.data, self.splits = data, splits
        return data

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
        """What the item texts were rendered from, for the embedding cache key (which also hashes the texts)."""
        opts = self.options
        return json.dumps(
            {"template": opts["template"], "separator": opts["separator"], "source": self.source.name}, sort_keys=True
        )

    def user_texts(self) -> list[str]:
        """One text per user, rendered from the source's user fields (`data.user_text`); empty for a user whose
        fields are all empty. Refused where the source has no user fields, or no user has any text."""
        return render_user_texts(self.prepare().users, self.source, self.user_text)

    @property
    def user_template_id(self) -> str:
        """What the user texts were rendered from, for the embedding cache key (which also hashes the texts)."""
        return json.dumps({"users": self.user_text, "source": self.source.name}, sort_keys=True)

    def train_history(self) -> CSRMatrix:
        """Each user's training items: what a history user tower may see (never validation or test)."""
        self.prepare()
        if self._history is None:  # built and checked once: several towers and masks may ask for it
            history = self.splits.matrix("train")
            check_train_history(history, self.splits)
            self._history = history
        return self._history

    def train_sequences(self) -> UserSequences:
        """Each user's training items in time order: what a sequence user tower reads in the ranking task."""
        self.train_history()  # the same leakage guard: a training sequence holds exactly the training pairs
        return sequences_of(self.splits, ("train",))

    def statistics(self) -> dict[str, float]:
        """What a reader needs to judge a result: size, sparsity, and how long the item texts are."""
        data = self.prepare()
        n = len(data.interactions)
        words = data.items["text"].str.split().str.len()
        return {
            "users": data.num_users,
            "items": data.num_items,
            "interactions": n,
            "density": n / max(1, data.num_users * data.num_items),
            **{f"{name}_interactions": self.splits.size(name) for name in SPLITS},
            "text_words_mean": float(words.mean()) if len(words) else 0.0,
            "text_words_max": int(words.max()) if len(words) else 0,
        }

    def protocol(self) -> dict[str, Any]:
        """The options that shaped the processed tables (for the data card and run records)."""
        return {"source": self.source.identity(), **self.options}

    def data_card(
        self, count_tokens: TokenCounter | None = None, tokenizer: str | None = None, max_length: int | None = None
    ) -> dict[str, Any]:
        """The data card (figures + protocol) of the prepared data; text lengths in tokens when a counter is given,
        else in words."""
        return make_card(dataset_figures(self.prepare(), count_tokens, tokenizer, max_length), self.protocol())

    # -- Lightning hooks ------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    def _task(self) -> Task:
        if self.task is None:
            raise RuntimeError("RecDataModule has no task: pass task= to serve batches")
        return self.task

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
        self.prepare()
        return self._loader(self._task().train_dataset(self.splits), self.batch_size, shuffle=True)

    def _eval_loader(self, split: str) -> DataLoader:
        self.prepare()
        dataset = self._task().eval_dataset(self.splits, split)
        return self._loader(dataset, self._eval_rows(dataset), shuffle=False, sampler=self._eval_sampler(dataset))

    def _eval_rows(self, dataset: Dataset) -> int:
        """`data.eval_batch_size`, or with `auto` what the dataset says fits `data.eval_memory_mb` (a dataset that
        scores whole rows of the catalogue offers `rows_within(memory_mb, num_workers)`; one whose rows are pairs
        takes 1024 rows)."""
        if self.eval_batch_size != "auto":
            return int(self.eval_batch_size)
        rows_within = getattr(dataset, "rows_within", None)
        if rows_within is None:
            return 1024
        rows = int(rows_within(self.eval_memory_mb, self.num_workers))
        log.info("data.eval_batch_size=auto: %d rows per batch (%s MB)", rows, self.eval_memory_mb)
        return rows

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


# -- data-derived constructor arguments of towers, heads and baselines (lmrec.config.arguments) -----------------
@provides("num_users")
def _num_users(facts: BuildFacts) -> int:
    return facts.datamodule.num_users


@provides("num_items")
def _num_items(facts: BuildFacts) -> int:
    return facts.datamodule.num_items


@provides("history")
def _history(facts: BuildFacts) -> CSRMatrix:
    """Each user's training items (CSR): never validation or test interactions."""
    return facts.datamodule.train_history()
