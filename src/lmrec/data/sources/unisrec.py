"""The downstream sets UniSRec (Hou et al., KDD 2022) and VQ-Rec (WWW 2023) release, in their own format.

One folder holds, for a set named `<name>` (Scientific, Pantry, Instruments, Arts, Office, OR):

- `<name>.train.inter`, `.valid.inter`, `.test.inter`: tab-separated, header
  `user_id:token  item_id_list:token_seq  item_id:token`; each row a user's history (integer item indices, oldest
  first, at most the last 50) and the item that followed it. The training file holds every prefix of a user's
  training sequence, the validation file one row per user (the second-to-last item), the test file one row per
  user (the last item);
- `<name>.text`: `item_id:token  text:token_seq`, each item's ASIN and its text;
- `<name>.item2index`, `<name>.user2index`: ASIN (reviewer id) -> the integer index the `.inter` files use, no header.

The rows do not give the sequences directly: each user's sequence is rebuilt by chaining their rows (the shortest
training history, then each row's target in order of history length, then validation's and test's targets), and
every row is checked against the sequence rebuilt so far: a history that is not the last items of what came before
it (a validation row that is not the test row's prefix, say) is an error naming the file and line. The release's
split is kept exactly, as a `split` column (`data.split.strategy=source`); positions in the sequence are the
timestamps (the release has no times). Items are the ASINs with their text; users the reviewer ids.

A repeated (user, item) pair inside a sequence (a re-purchase; 291 of Scientific's 59,427 interactions) follows
`data.source.duplicates` (`last` in `conf/data/unisrec.yaml`: the later interaction is kept, so a test item bought
before stays the test item and leaves the training rows).

Why not the generic or RecBole readers: their rows are interactions; these rows are windows of sequences that must
agree with each other, and that agreement is what makes the split trustworthy.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmrec.data.io.checks import RowChecks
from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import RawTable
from lmrec.data.sources.base import Source, SourceTables
from lmrec.data.sources.columns import FileSpec
from lmrec.data.sources.file_interactions import merge_duplicates
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

#: The six downstream sets of the UniSRec / VQ-Rec release (any other name in the same format reads too).
RELEASED = ("Scientific", "Pantry", "Instruments", "Arts", "Office", "OR")
#: The release's split files, in order, and lmrec's names for their splits.
SPLIT_FILES = {"train": "train", "valid": "val", "test": "test"}
INTER_COLUMNS = ("user_id:token", "item_id_list:token_seq", "item_id:token")
TEXT_COLUMNS = ("item_id:token", "text:token_seq")


@dataclass
class Row:
    """One `.inter` row: where it was read, and the history and target it holds (item indices)."""

    file: Path
    line: int
    history: list[int]
    target: int


class UniSRecRelease(Source):
    """A UniSRec/VQ-Rec downstream set (`root` holding `<dataset>.train.inter` and the five other files)."""

    item_fields: ClassVar[tuple[str, ...]] = ("text",)

    def __init__(
        self,
        root: str | Path,
        dataset: str | None = None,
        history_cap: int = 50,
        duplicates: str = "last",
        **kwargs: Any,
    ) -> None:
        super().__init__(root, duplicates=duplicates, **kwargs)
        if isinstance(history_cap, bool) or not isinstance(history_cap, int) or history_cap < 1:
            raise ConfigError(f"data.source.history_cap={history_cap!r}; expected a positive whole number (50)")
        self.history_cap = history_cap
        self._dataset = str(dataset) if dataset else None

    @property
    def dataset(self) -> str:
        """The set's file prefix: as configured, or the one `<name>.train.inter` in the folder."""
        if self._dataset is not None:
            return self._dataset
        found = sorted(p.name.removesuffix(".train.inter") for p in self.root.glob("*.train.inter"))
        if len(found) != 1:
            what = "no <name>.train.inter" if not found else f"several sets ({', '.join(found)})"
            raise ConfigError(
                f"data.source.root={self.root} holds {what}; set data.source.dataset to one of "
                f"{', '.join(RELEASED)} (the release's file prefix)"
            )
        return found[0]

    def files(self) -> list[str]:
        d = self.dataset
        names = [f"{d}.{s}.inter" for s in SPLIT_FILES] + [f"{d}.text", f"{d}.item2index", f"{d}.user2index"]
        self.require(*names)
        return names

    def options(self) -> dict[str, Any]:
        return {**super().options(), "dataset": self.dataset, "history_cap": self.history_cap}

    # -- reading -------------------------------------------------------------------------------------------------
    def _table(self, name: str, columns: tuple[str, ...], header: bool = True) -> RawTable:
        options = {"format": "tsv", "quoted": False, "header": header, "names": None if header else list(columns)}
        return FileSpec.parse("data.source", name, options).read(self.root, columns)

    def _index(self, name: str, what: str, drop_invalid: bool, dropped: dict) -> dict[int, str]:
        """index -> original id, from a headerless `<id> <index>` file; indices must be unique."""
        raw = self._table(name, ("original", "index"), header=False)
        checks = RowChecks(raw)
        indices = checks.unique_ids("index", f"{what} index", low=0)
        keep = checks.resolve(drop_invalid, dropped)
        originals = checks.strings("original", keep)
        kept = indices if keep is None else indices[keep]
        return dict(zip(kept.tolist(), originals.tolist(), strict=True))

    def _texts(self, name: str, asins: set[str]) -> dict[str, str]:
        raw = self._table(name, TEXT_COLUMNS)
        checks = RowChecks(raw)
        keep = checks.resolve(False, {})
        ids = checks.strings("item_id:token", keep).tolist()
        texts = checks.strings("text:token_seq", keep).str.strip().tolist()
        out: dict[str, str] = {}
        for i, (asin, text) in enumerate(zip(ids, texts, strict=True)):
            line = int(raw.lines[i])
            if asin in out:
                raise DataValidationError(raw.path, line, "item_id:token", f"item {asin} has a second text")
            if asin not in asins:
                raise DataValidationError(
                    raw.path, line, "item_id:token", f"item {asin} is not in {self.dataset}.item2index"
                )
            out[asin] = text
        return out

    def _rows(self, name: str, users: dict[int, str], items: dict[int, str]) -> dict[int, list[Row]]:
        """user index -> that user's rows of one `.inter` file, in file order; every index checked."""
        raw = self._table(name, INTER_COLUMNS)
        checks = RowChecks(raw)
        user = checks.integers("user_id:token", "user index", low=0)
        target = checks.integers("item_id:token", "item index", low=0)
        checks.resolve(False, {})
        out: dict[int, list[Row]] = defaultdict(list)
        histories = raw.columns["item_id_list:token_seq"]
        for i, (u, t, text) in enumerate(zip(user.tolist(), target.tolist(), histories, strict=True)):
            line = int(raw.lines[i])
            if u not in users:
                raise DataValidationError(raw.path, line, "user_id:token", f"user index {u} is not in user2index")
            try:
                history = [int(x) for x in str(text).split()]
            except ValueError:
                raise DataValidationError(
                    raw.path, line, "item_id_list:token_seq", f"expected item indices separated by spaces, got {text!r}"
                ) from None
            for item in (*history, t):
                if item not in items:
                    raise DataValidationError(
                        raw.path, line, "item_id_list:token_seq", f"item index {item} is not in item2index"
                    )
            if not history or len(history) > self.history_cap:
                raise DataValidationError(
                    raw.path,
                    line,
                    "item_id_list:token_seq",
                    f"a history of {len(history)} items; the release keeps 1 to {self.history_cap} "
                    "(data.source.history_cap)",
                )
            out[u].append(Row(raw.path, line, history, t))
        return out

    def sequence(self, user: int, rows: dict[str, list[Row]]) -> tuple[list[int], list[Row | None], int, bool]:
        """(the user's items in order, the row each came from (None: the first row's history), how many of them
        are training items, whether the first row's history was already cut at the cap), every row checked
        against the sequence before it."""
        train = rows.get("train", [])
        lengths = [len(r.history) for r in train]
        if lengths != sorted(lengths):
            train = train[::-1]  # the release writes a user's training rows longest first
            if [len(r.history) for r in train] != sorted(lengths):
                raise DataValidationError(
                    train[0].file, train[-1].line, "item_id_list:token_seq",
                    f"user {user}'s training rows are in no order of history length",
                )  # fmt: skip
        for split in ("valid", "test"):
            found = rows.get(split, [])
            if len(found) != 1:
                where = self.root / f"{self.dataset}.{split}.inter"
                line = found[1].line if found else None
                raise DataValidationError(
                    where, line, "user_id:token", f"user {user} has {len(found)} rows; expected 1"
                )
        ordered = [*train, rows["valid"][0], rows["test"][0]]
        items: list[int] = list(ordered[0].history)
        origin: list[Row | None] = [None] * len(items)
        for row in ordered:
            expected = items[-len(row.history) :] if len(row.history) == self.history_cap else items
            if row.history != expected:
                before = origin[-1] if origin[-1] is not None else ordered[0]
                raise DataValidationError(
                    row.file,
                    row.line,
                    "item_id_list:token_seq",
                    f"user {user}'s history does not continue their sequence so far (up to {before.file.name} "
                    f"line {before.line}): expected {' '.join(map(str, expected[-8:]))} at its end, found "
                    f"{' '.join(map(str, row.history[-8:]))}",
                )
            items.append(row.target)
            origin.append(row)
        return items, origin, len(items) - 2, len(ordered[0].history) == self.history_cap

    def read(self, drop_invalid: bool = False) -> SourceTables:
        names = self.files()
        dropped: dict[str, dict[str, int]] = {}
        items = self._index(names[4], "item", drop_invalid, dropped)
        users = self._index(names[5], "user", drop_invalid, dropped)
        texts = self._texts(names[3], set(items.values()))
        missing = [index for index, asin in items.items() if asin not in texts]
        if missing:
            raise DataValidationError(
                self.root / names[4], None, None, f"{len(missing)} items have no text in {names[3]} (first: "
                f"index {missing[0]}, {items[missing[0]]}); every item of the release has one"
            )  # fmt: skip
        per_split = {split: self._rows(name, users, items) for split, name in zip(SPLIT_FILES, names, strict=False)}
        columns: dict[str, list[Any]] = {k: [] for k in ("user_id", "item_id", "timestamp", "split", "_file", "_line")}
        cut = 0
        for user in sorted(set().union(*per_split.values())):
            sequence, origin, train_length, was_cut = self.sequence(user, {s: r[user] for s, r in per_split.items()})
            cut += was_cut
            first = next(r for r in origin if r is not None)
            for position, (item, row) in enumerate(zip(sequence, origin, strict=True)):
                split = "train" if position < train_length else ("val" if position == train_length else "test")
                columns["user_id"].append(users[user])
                columns["item_id"].append(items[item])
                columns["timestamp"].append(position)
                columns["split"].append(split)
                columns["_file"].append(str((row or first).file))
                columns["_line"].append((row or first).line)
        if cut:
            log.warning("%d users' first training row already holds %d items: their earliest items are not in the "
                        "release", cut, self.history_cap)  # fmt: skip
        without = len(users) - len(set().union(*per_split.values()))
        if without:
            log.warning("%d users of %s have no rows in the .inter files", without, names[5])
        frame = pd.DataFrame(columns).assign(rating=np.float32(1.0), _unit="line")
        frame["timestamp"] = frame["timestamp"].astype(np.int64)
        interactions = merge_duplicates(frame, self.duplicates, drop_invalid, dropped, "item_id:token")
        interactions = interactions[["user_id", "item_id", "rating", "timestamp", "split"]]
        order = sorted(items)
        table = pd.DataFrame({"item_id": [items[i] for i in order], "text": [texts[items[i]] for i in order]})
        return SourceTables(interactions=interactions, items=table, users=None, dropped=dropped)
