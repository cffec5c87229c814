"""The LightningDataModule: a source's files -> processed, split interactions -> the batches its task asks for."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler

from lmrec.data.batches import RankingEvalBatches, identity_collate
from lmrec.data.card import make_card
from lmrec.data.eval_batch import check_eval_batch_size, users_per_eval_batch
from lmrec.data.filters import check_filter_options
from lmrec.data.interactions import SPLITS, InteractionSplits
from lmrec.data.processed import ProcessedData, load_processed
from lmrec.data.protocol import check_train_inputs, pair_keys
from lmrec.data.sequences import UserSequences, sequences_of
from lmrec.data.sources.base import Source
from lmrec.data.sparse import CSRMatrix
from lmrec.data.splits import check_split_options
from lmrec.data.stats import TokenCounter, dataset_figures
from lmrec.data.texts import render_item_texts, validate_template
from lmrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from lmrec.tasks.base import Task

log = logging.getLogger(__name__)


class RecDataModule(pl.LightningDataModule):
    """Loads (or reads cached) processed tables once, then serves the datasets the task builds from them.

    Every option is checked when the module is configured, before any file is read. Loading happens in
    `prepare()`, called by the entry point before the model is built, because the model's sizes (users, items)
    and item texts come from the data.
    """

    def __init__(
        self,
        source: Source,
        task: Task | None = None,
        cache_dir: str | None = None,
        text: dict | None = None,
        split: dict | None = None,
        seed: int = 42,
        batch_size: int = 1024,
        eval_batch_size: int | str = 1024,
        eval_memory_mb: float = 1024.0,
        num_workers: int = 0,
        drop_invalid: bool = False,
        verify_checksums: bool = True,
        max_users: int | None = None,
        implicit: dict | None = None,
        kcore: dict | None = None,
        filters: dict | None = None,
        user_text: dict | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size}; expected >= 1")
        check_eval_batch_size(eval_batch_size)
        if max_users is not None and int(max_users) < 1:
            raise ConfigError(f"data.max_users={max_users}; expected a positive number of users, or null for all")
        text, split = dict(text or {}), dict(split or {})
        implicit, kcore, filters = dict(implicit or {}), dict(kcore or {}), dict(filters or {})
        self.source = source
        self.task = task
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.batch_size, self.eval_batch_size, self.eval_memory_mb = batch_size, eval_batch_size, eval_memory_mb
        self.num_workers = num_workers
        self.verify_checksums = verify_checksums
        self.options: dict[str, Any] = {
            "template": list(text.get("template") or source.template()),
            "separator": str(text.get("separator", ". ")),
            "split": str(split.get("strategy", "random")),
            "ratios": [float(r) for r in split.get("ratios", [8, 1, 1])],
            "seed": int(seed),
            "drop_invalid": bool(drop_invalid),
            "max_users": int(max_users) if max_users is not None else None,
            "implicit_threshold": _optional_float(implicit.get("threshold")),
            "kcore": [int(kcore.get("user") or 0), int(kcore.get("item") or 0)],
            "min_text_words": int(filters.get("min_text_words") or 0),
            "require_text": bool(filters.get("require_text", False)),
            "split_options": {
                "cut": [float(c) for c in split["cut"]] if split.get("cut") is not None else None,
                "cold_share": float(split.get("cold_share", 0.2)),
                "cold_profile": int(split.get("cold_profile") or 0),
                "max_history": int(split["max_history"]) if split.get("max_history") is not None else None,
            },
        }
        validate_template(self.options["template"], source.item_fields, source.name)
        self.user_text = user_text_options(dict(user_text or {}), source)
        check_split_options(self.options["split"], self.options["ratios"], **self.options["split_options"])
        check_filter_options(self.options["implicit_threshold"], *self.options["kcore"], self.options["min_text_words"])
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
        """`data.eval_batch_size`, or with `auto` the most users whose full-ranking scores fit
        `data.eval_memory_mb` (rating batches, whose rows are pairs, then take 1024 rows)."""
        if self.eval_batch_size != "auto":
            return int(self.eval_batch_size)
        if not isinstance(dataset, RankingEvalBatches):
            return 1024
        rows = users_per_eval_batch(self.num_items, self.eval_memory_mb, self.num_workers)
        log.info(
            "data.eval_batch_size=auto: %d users per batch (%d items, %s MB)", rows, self.num_items, self.eval_memory_mb
        )
        return rows

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


def user_text_options(options: dict[str, Any], source: Source) -> dict[str, Any]:
    """`data.user_text` with its default template (one `Field: {field}` segment per user field of the source).

    Checked now, before any file is read, when a template is given; without one a source without user fields is
    only refused when a user-text tower asks for the texts (`render_user_texts`)."""
    template = options.get("template")
    if template is None:
        template = [f"{field.replace('_', ' ').capitalize()}: {{{field}}}" for field in source.user_fields]
    elif source.user_fields:
        validate_template(list(template), source.user_fields, source.name)
    return {"template": [str(t) for t in template], "separator": str(options.get("separator", ". "))}


def render_user_texts(users: Any, source: Source, options: dict[str, Any]) -> list[str]:
    fields = list(source.user_fields)
    if not fields or not options["template"]:
        raise ConfigError(
            f"data source {source.name} has no user text (no user fields), so model/user_tower=text has nothing to "
            "read; MovieLens has the tags users wrote (data.source.max_user_tags=N) and 100K/1M demographics, Amazon "
            "the user's reviews (data.source.user_reviews=true)"
        )
    validate_template(options["template"], fields, source.name)
    frame = users.reindex(columns=fields).fillna("").astype(str)
    texts = render_item_texts(frame, fields, options["template"], options["separator"])
    with_text = sum(1 for t in texts if t.strip())
    if with_text == 0:
        raise DataError(
            f"data source {source.name}: no user has any text in the fields {', '.join(fields)}; "
            "model/user_tower=text would read nothing"
        )
    log.info("user texts: %d of %d users have text (the others read as an empty text)", with_text, len(texts))
    return texts


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def check_train_history(history: CSRMatrix, splits: InteractionSplits) -> None:
    """Leakage guard on what a history tower reads: exactly the training pairs, no validation or test pair."""
    n = splits.num_items
    train_users, train_items, _ = splits.tensors("train")
    held = [splits.tensors(s) for s in ("val", "test")]
    held_keys = pair_keys(torch.cat([h[0] for h in held]).numpy(), torch.cat([h[1] for h in held]).numpy(), n)
    check_train_inputs(
        history.crow.numpy(), history.col.numpy(), pair_keys(train_users.numpy(), train_items.numpy(), n), held_keys, n
    )
