"""MIND, the Microsoft News Dataset (small and large), read from its official folders as distributed.

Each split folder (`MINDsmall_train`, `MINDsmall_dev`, `MINDlarge_train`, `MINDlarge_dev`, `MINDlarge_test`) holds
`news.tsv` and `behaviors.tsv`, tab-separated without a header and without quoting (titles hold `"` freely):

- `news.tsv`: news id, category, subcategory, title, abstract (may be empty), url, title entities and abstract
  entities (JSON arrays, may be empty). Items: the union of the folders' news files; a news id defined twice
  with the same category, subcategory, title and abstract is one item, with different ones an error.
- `behaviors.tsv`: see `mind_behaviors`. Interactions: every click (`-1` candidate) as (user, news, rating 1,
  the impression's time), and with `history=True` also each user's click history, which the file gives without
  times: a user's history clicks are dated one second apart, in the order listed, ending one second before the
  user's first impression in the files read, so they precede every impression of that user and keep their order.

The official split is a `split` column (`data.split.strategy=source` uses it): the train folder's clicks are
"train"; the dev folder's are "test"; validation is a seeded `val_share` of the train folder's impressions
(`val_from=train`, the default, so the whole dev set stays the test set that MIND papers report on), or of the dev
folder's (`val_from=dev`: the rest of dev is the test set). The split is drawn per impression. The MINDlarge test
folder has no labels: `test=<folder>` adds its news to the items (for scoring its impressions later) and nothing
else. `impressions(split)` gives the validation or test impressions whole, for the impression task.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmrec.data.impressions import Impressions
from lmrec.data.io.checks import RowChecks, take
from lmrec.data.io.errors import DataValidationError
from lmrec.data.io.readers import TextFormat, read_text_table
from lmrec.data.sources.base import Source, SourceTables, apply_duplicate_policy
from lmrec.data.sources.mind_behaviors import read_behaviors
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

NEWS = ("news id", "category", "subcategory", "title", "abstract", "url", "title entities", "abstract entities")
NEWS_FORMAT = TextFormat("\t", header=False, names=NEWS, quoted=False)
FIELDS = {"category": "category", "subcategory": "subcategory", "title": "title", "abstract": "abstract"}
VAL_FROM = ("train", "dev")


def _entities_ok(value: str) -> bool:
    if value == "":
        return True
    try:
        return isinstance(json.loads(value), list)
    except json.JSONDecodeError:
        return False


class MIND(Source):
    """MIND small or large: news as items (title, abstract, category, subcategory), clicks as interactions."""

    item_fields: ClassVar[tuple[str, ...]] = ("title", "abstract", "category", "subcategory")
    default_template: ClassVar[tuple[str, ...]] = ("{title}", "{abstract}", "Category: {category}, {subcategory}")

    def __init__(
        self,
        root: str | Path,
        train: str = "MINDsmall_train",
        dev: str = "MINDsmall_dev",
        test: str | None = None,
        history: bool = True,
        val_from: str = "train",
        val_share: float = 0.1,
        seed: int = 0,
        rating_min: float = 0.0,
        rating_max: float = 1.0,
        duplicates: str = "first",
        **kwargs: Any,
    ) -> None:
        super().__init__(root, rating_min, rating_max, duplicates=duplicates, **kwargs)
        if val_from not in VAL_FROM:
            raise ConfigError(f"data.source.val_from={val_from!r}; expected 'train' or 'dev'")
        if isinstance(val_share, bool) or not 0.0 < float(val_share) < 1.0:
            raise ConfigError(f"data.source.val_share={val_share}; expected a share between 0 and 1 (exclusive)")
        if not self.rating_scale.low <= 1.0 <= self.rating_scale.high:
            raise ConfigError("a MIND click is rating 1: data.source.rating_min/rating_max must include 1")
        self.train, self.dev, self.test = str(train), str(dev), (str(test) if test else None)
        if len(set(self._folders())) < len(self._folders()):
            raise ConfigError(f"data.source.train={train}, dev={dev}, test={test}: each split needs its own folder")
        self.history, self.val_from, self.val_share, self.seed = bool(history), val_from, float(val_share), int(seed)
        self._behaviors: dict[str, Impressions] = {}
        self._news: np.ndarray | None = None

    def _folders(self) -> list[str]:
        return [self.train, self.dev] + ([self.test] if self.test else [])

    def files(self) -> list[str]:
        names = [f"{folder}/{name}" for folder in (self.train, self.dev) for name in ("news.tsv", "behaviors.tsv")]
        names += [f"{self.test}/news.tsv"] if self.test else []
        self.require(*names)
        return names

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "folders": self._folders(),
            "history": self.history,
            "val_from": self.val_from,
            "val_share": self.val_share,
            "seed": self.seed,
        }

    # -- items ----------------------------------------------------------------------------------------------
    def _read_news(self, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> pd.DataFrame:
        parts = []
        for order, folder in enumerate(self._folders()):
            path = self.root / folder / "news.tsv"
            checks = RowChecks(read_text_table(path, NEWS_FORMAT, NEWS))
            ids = np.asarray(checks.raw.columns["news id"], dtype=object)
            checks.add("invalid news id", "news id", ids == "", lambda i: "expected a news id, got an empty field")
            for column in ("title entities", "abstract entities"):
                values = checks.raw.columns[column]
                bad = np.fromiter((not _entities_ok(v) for v in values), dtype=bool, count=len(values))
                checks.add(f"invalid {column}", column, bad, lambda i: "expected a JSON array of entities or nothing")
            own: dict[str, dict[str, int]] = {}
            keep = checks.resolve(drop_invalid, own)
            dropped.update({f"{folder}/{name}": counts for name, counts in own.items()})
            part = pd.DataFrame({"item_id": take(ids, keep), **{f: checks.strings(c, keep) for f, c in FIELDS.items()}})
            parts.append(part.assign(_file=order, _line=take(checks.raw.lines, keep)))
        news = pd.concat(parts, ignore_index=True)
        unique = news.drop_duplicates(["item_id", *FIELDS])
        conflict = unique.duplicated("item_id")
        if conflict.any():
            if not drop_invalid:
                row = unique[conflict].iloc[0]
                first = unique[(unique["item_id"] == row["item_id"]) & ~conflict].iloc[0]
                field = next(f for f in FIELDS if row[f] != first[f])
                first_file = f"{self._folders()[first['_file']]}/news.tsv"
                raise DataValidationError(
                    self.root / self._folders()[row["_file"]] / "news.tsv",
                    int(row["_line"]),
                    field,
                    f"news {row['item_id']} has {field} {row[field]!r} here but {first[field]!r} on line "
                    f"{first['_line']} of {first_file}; a news id must mean one article",
                )
            dropped.setdefault("news.tsv", {})["conflicting news (the first definition kept)"] = int(conflict.sum())
            log.warning("news.tsv: %d conflicting redefinitions of a news id dropped", int(conflict.sum()))
        items = unique[~conflict].drop(columns=["_file", "_line"]).reset_index(drop=True)
        self._news = items["item_id"].to_numpy()
        return items

    # -- interactions ---------------------------------------------------------------------------------------
    def _parsed(self, folder: str, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> Impressions:
        if folder not in self._behaviors:
            if self._news is None:
                self._read_news(drop_invalid, {})
            self._behaviors[folder] = read_behaviors(
                self.root / folder / "behaviors.tsv", self._news, "the news.tsv files", True, drop_invalid, dropped
            )
        return self._behaviors[folder]

    def _val_rows(self, impressions: Impressions) -> np.ndarray:
        """Which impressions of the `val_from` folder are validation: a seeded share, drawn per impression id so
        that dropping a bad row elsewhere in the file does not move any other impression between splits."""
        rng = np.random.default_rng(self.seed)
        ids = impressions.impression_ids
        draw = rng.random(int(ids.max()) + 1 if len(ids) else 0)
        return draw[ids] < self.val_share if len(ids) else np.zeros(0, dtype=bool)

    def _split_of(self, folder: str, impressions: Impressions) -> np.ndarray:
        base = "train" if folder == self.train else "test"
        split = np.full(len(impressions), base, dtype=object)
        if folder == (self.train if self.val_from == "train" else self.dev):
            split[self._val_rows(impressions)] = "val"
        return split

    def impressions(self, split: str, drop_invalid: bool = False) -> Impressions:
        """The validation or test impressions, whole (candidates and labels), as the split column assigns them
        (parsed once per source object: after `read`, not again)."""
        if split not in ("val", "test"):
            raise ValueError(f"impressions(split) takes 'val' or 'test', got {split!r}")
        folder = self.dev if split == "test" else (self.train if self.val_from == "train" else self.dev)
        parsed = self._parsed(folder, drop_invalid, {})
        return parsed.select(self._split_of(folder, parsed) == split)

    def read(self, drop_invalid: bool = False) -> SourceTables:
        self.files()
        self._behaviors, dropped = {}, {}
        items = self._read_news(drop_invalid, dropped)
        frames, first_seen = [], {}
        for folder in (self.train, self.dev):
            parsed = self._parsed(folder, drop_invalid, dropped)
            split = self._split_of(folder, parsed)
            segment = np.repeat(np.arange(len(parsed)), parsed.lengths())
            clicked = parsed.labels == 1
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": parsed.users[segment[clicked]],
                        "item_id": parsed.items[parsed.candidates[clicked]],
                        "timestamp": parsed.timestamps[segment[clicked]],
                        "split": split[segment[clicked]],
                        "_where": f"{folder}/behaviors.tsv",
                        "_line": parsed.lines[segment[clicked]],
                        "_field": "impressions",
                    }
                )
            )
            first_seen[folder] = pd.Series(parsed.timestamps).groupby(parsed.users).min()
        if self.history:
            frames.insert(0, self._history_rows(first_seen))
        interactions = pd.concat(frames, ignore_index=True)
        interactions = interactions.sort_values("timestamp", kind="stable").reset_index(drop=True)
        interactions.insert(2, "rating", np.float32(1.0))
        if self.duplicates == "error":
            self._refuse_repeats(interactions)
        interactions = apply_duplicate_policy(interactions, self.duplicates, self.root / "behaviors.tsv", dropped)
        interactions = interactions.drop(columns=["_where", "_line", "_field"])
        self._keep_held_out()
        return SourceTables(interactions=interactions, items=items, users=None, dropped=dropped)

    def _keep_held_out(self) -> None:
        """Keep only the parsed impressions `impressions()` can still ask for (validation and test ones): the
        training impressions of MINDlarge alone hold about 80 million candidates."""
        for folder in list(self._behaviors):
            parsed = self._behaviors.pop(folder)
            held = self._split_of(folder, parsed) != "train"
            if held.any():
                self._behaviors[folder] = parsed.select(held)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. to spawned processes) without the parsed files, which are re-read when needed."""
        return {**self.__dict__, "_behaviors": {}, "_news": None}

    def _history_rows(self, first_seen: dict[str, pd.Series]) -> pd.DataFrame:
        """Each user's history clicks once (the ordered union over the impressions of both folders), dated one
        second apart, ending one second before the user's first impression.

        Every impression line repeats its user's history (MINDlarge's training file: about 70 million history
        tokens), so repeats are removed on integer codes before any id column is built."""
        folders = (self.train, self.dev)
        parsed = [self._behaviors[folder] for folder in folders]
        lengths = [np.diff(p.history_offsets) for p in parsed]
        user_codes, user_ids = pd.factorize(np.concatenate([p.users for p in parsed]))
        users = np.repeat(user_codes, np.concatenate(lengths))
        items = np.concatenate([p.history for p in parsed]).astype(np.int64)
        lines = np.concatenate([np.repeat(p.lines, n) for p, n in zip(parsed, lengths, strict=True)])
        source = np.repeat(np.arange(len(folders)), [int(n.sum()) for n in lengths])
        _, first = np.unique(users * (len(self._news) + 1) + items, return_index=True)
        first.sort()  # first occurrences, in file order
        users, items = users[first], items[first]
        frame = pd.DataFrame(
            {
                "user_id": np.asarray(user_ids, dtype=object)[users],
                "item_id": self._news[items],
                "_where": np.asarray([f"{f}/behaviors.tsv" for f in folders], dtype=object)[source[first]],
                "_line": lines[first],
                "_field": "history",
            }
        )
        earliest = pd.concat(list(first_seen.values())).groupby(level=0).min()
        position = frame.groupby("user_id", sort=False).cumcount().to_numpy()
        count = frame.groupby("user_id", sort=False)["item_id"].transform("size").to_numpy()
        start = earliest.reindex(frame["user_id"]).to_numpy(np.int64)
        frame = frame.assign(timestamp=start - count + position, split="train")
        return frame[["user_id", "item_id", "timestamp", "split", "_where", "_line", "_field"]]

    def _refuse_repeats(self, interactions: pd.DataFrame) -> None:
        """`duplicates=error`: a user who clicked the same news twice (two impressions, or an impression and the
        history) stops the read, naming both places."""
        repeated = interactions.duplicated(["user_id", "item_id"])
        if not repeated.any():
            return
        row = interactions[repeated].iloc[0]
        same = interactions[(interactions["user_id"] == row["user_id"]) & (interactions["item_id"] == row["item_id"])]
        first = same.iloc[0]
        raise DataValidationError(
            self.root / row["_where"],
            int(row["_line"]),
            row["_field"],
            f"user {row['user_id']} clicked {row['item_id']} again (first in the {first['_field']} on line "
            f"{first['_line']} of {first['_where']}); set data.source.duplicates=first, last or sum to merge repeats",
        )
