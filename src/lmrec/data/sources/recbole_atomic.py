"""RecBole atomic files: `<dataset>.inter`, optional `<dataset>.item` and `<dataset>.user`, in one folder.

Each file is separated by `field_separator` (a tab) and its header types every column as `name:type`, with type
one of `token` (a single categorical value, such as an id), `token_seq` (tokens joined by spaces, such as a
title), `float` and `float_seq` (RecBole's own reader also treats `"` as a quote character; so does this one).
The user, item, rating and time fields are named as in RecBole's `USER_ID_FIELD`, `ITEM_ID_FIELD`,
`RATING_FIELD` and `TIME_FIELD`; a file without the rating column is implicit feedback (every rating 1.0), one
without the time column is ordered by position (train, then valid, then test).

A benchmark split (`<dataset>.train.inter`, `.valid.inter`, `.test.inter`, RecBole's `benchmark_filename`) is read
when the three files are there (or named in `benchmark_filename`): its rows carry a `split` column ("train",
"val", "test"), which `data.split.strategy=source` uses as the split. `lmrec.runs.split_export` writes exactly
these files, so a split can go from lmrec to RecBole and back.

Item text fields are the `.item` columns other than the id (their names without the type), kept as written
(a `token_seq` keeps its spaces); without a `.item` file the only text field is `{id}`, the item id as text.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.base import Source, SourceTables
from lmrec.data.sources.columns import FileSpec, check_id_type, choose_id_type, entity_table
from lmrec.data.sources.file_interactions import InteractionColumns, interaction_rows, merge_duplicates
from lmrec.data.sources.generic import ID_FIELD
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

TYPES = ("token", "token_seq", "float", "float_seq")
#: lmrec's split names for RecBole's benchmark suffixes, in RecBole's order.
BENCHMARK = {"train": "train", "valid": "val", "test": "test"}


class RecBoleAtomic(Source):
    """A RecBole dataset folder (`root`, holding `<dataset>.inter` and friends), optionally with its split."""

    def __init__(
        self,
        root: str | Path,
        dataset: str | None = None,
        user_field: str = "user_id",
        item_field: str = "item_id",
        rating_field: str | None = "rating",
        time_field: str | None = "timestamp",
        item_fields: list[str] | None = None,
        user_fields: list[str] | None = None,
        id_type: str = "auto",
        benchmark_filename: str | list[str] | None = "auto",
        field_separator: str = "\t",
        encoding: str = "utf-8",
        quoted: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.dataset = str(dataset) if dataset else self.root.name
        self.fields = {"user": user_field, "item": item_field, "rating": rating_field, "time": time_field}
        self.id_type = check_id_type("data.source.id_type", id_type)
        if benchmark_filename not in ("auto", None) and (
            isinstance(benchmark_filename, str) or len(list(benchmark_filename)) != 3
        ):
            raise ConfigError(
                f"data.source.benchmark_filename={benchmark_filename!r}: expected auto, null, or the three suffixes "
                "of the train, validation and test files, e.g. [train, valid, test]"
            )
        self.benchmark = benchmark_filename if benchmark_filename in ("auto", None) else list(benchmark_filename)
        self.layout = {"separator": field_separator, "encoding": encoding, "quoted": quoted}
        self.spec = {k: self._spec(f"{self.dataset}.{k}") for k in ("item", "user")}
        self._configured = {
            "item": None if item_fields is None else [str(f) for f in item_fields],
            "user": None if user_fields is None else [str(f) for f in user_fields],
        }

    def _spec(self, name: str) -> FileSpec:
        return FileSpec.parse("data.source", name, {"format": "csv", **self.layout})

    # -- which files, which fields --------------------------------------------------------------------------
    def split_files(self) -> list[tuple[str, str | None]]:
        """(file name, split) of every interactions file: the benchmark split's three, or `<dataset>.inter`."""
        single = [(f"{self.dataset}.inter", None)]
        if self.benchmark is None:
            return single
        suffixes = list(BENCHMARK) if self.benchmark == "auto" else self.benchmark
        split = [(f"{self.dataset}.{s}.inter", name) for s, name in zip(suffixes, BENCHMARK.values(), strict=True)]
        if self.benchmark == "auto" and not all((self.root / name).is_file() for name, _ in split):
            return single
        return split

    def header(self, name: str) -> dict[str, tuple[str, str]]:
        """field -> (column as in the file, type) from a file's first line; a type RecBole lacks raises."""
        path = self.root / name
        try:
            with open(path, encoding=self.layout["encoding"], newline="") as handle:
                first = handle.readline().removeprefix("\ufeff").rstrip("\r\n")
        except UnicodeDecodeError as err:
            message = f"expected {self.layout['encoding']} text ({err.reason})"
            raise DataValidationError(path, 1, None, message) from None
        out = {}
        for column in first.split(self.layout["separator"]):
            field, _, kind = column.partition(":")
            if kind not in TYPES:
                raise DataValidationError(
                    path, 1, column, f"expected a typed header name:type with type one of {', '.join(TYPES)}"
                )
            out[field] = (column, kind)
        return out

    def _side_fields(self, what: str) -> tuple[str, ...]:
        configured = self._configured[what]
        if configured is not None:
            return tuple(str(f) for f in configured)
        name = self.spec[what].file
        if not (self.root / name).is_file():
            return (ID_FIELD,) if what == "item" else ()
        return tuple(f for f in self.header(name) if f != self.fields[what])

    @property
    def item_fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._side_fields("item")

    @property
    def user_fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._side_fields("user")

    def files(self) -> list[str]:
        names = [name for name, _ in self.split_files()]
        self.require(*names)
        return names + [s.file for s in self.spec.values() if (self.root / s.file).is_file()]

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "dataset": self.dataset,
            "fields": self.fields,
            "item_fields": self._configured["item"],
            "user_fields": self._configured["user"],
            "id_type": self.id_type,
            "benchmark_filename": self.benchmark,
            **self.layout,
        }

    # -- reading ----------------------------------------------------------------------------------------------
    def _typed(self, name: str, header: dict[str, tuple[str, str]], field: str, kinds: tuple[str, ...]) -> str:
        column, kind = header.get(field, (None, None))
        if column is None:
            found = ", ".join(c for c, _ in header.values())
            raise DataValidationError(self.root / name, 1, None, f"missing column {field!r} (found {found})")
        if kind not in kinds:
            raise DataValidationError(self.root / name, 1, column, f"expected {field} typed {' or '.join(kinds)}")
        return column

    def _side_table(self, what: str, id_type: str, drop_invalid: bool, dropped: dict) -> pd.DataFrame | None:
        spec = self.spec[what]
        if not (self.root / spec.file).is_file():
            return None
        header = self.header(spec.file)
        id_column = self._typed(spec.file, header, self.fields[what], ("token",))
        fields = {f: header[f][0] if f in header else f for f in self._side_fields(what)}
        raw = spec.read(self.root, [id_column, *fields.values()])
        self.types[what] = choose_id_type(raw, id_column, id_type)
        return entity_table(raw, id_column, self.types[what], fields, what, "line", drop_invalid, dropped)

    def read(self, drop_invalid: bool = False) -> SourceTables:
        self.files()
        dropped: dict[str, dict[str, int]] = {}
        self.types = {"user": self.id_type, "item": self.id_type}
        tables = {what: self._side_table(what, self.id_type, drop_invalid, dropped) for what in ("item", "user")}
        known = {w: (t[f"{w}_id"].to_numpy(), self.spec[w].file) for w, t in tables.items() if t is not None}
        frames, position, columns = [], 0, None
        for name, split in self.split_files():
            header = self.header(name)
            if columns is None:  # the first file decides whether there are ratings and times; the others follow
                optional = {k: self.fields[k] if self.fields[k] in header else None for k in ("rating", "time")}
                if optional["rating"] is None:
                    log.info("%s has no %r column: implicit feedback, every rating 1.0", name, self.fields["rating"])
                columns = InteractionColumns(
                    self._typed(name, header, self.fields["user"], ("token",)),
                    self._typed(name, header, self.fields["item"], ("token",)),
                    optional["rating"] and self._typed(name, header, optional["rating"], ("float",)),
                    optional["time"] and self._typed(name, header, optional["time"], ("float",)),
                )
            raw = self._spec(name).read(self.root, columns.required())
            for what, column in (("user", columns.user), ("item", columns.item)):
                self.types[what] = choose_id_type(raw, column, self.types[what])
            scale = (self.rating_scale.low, self.rating_scale.high)
            types = (self.types["user"], self.types["item"])
            rows = interaction_rows(raw, "line", columns, types, scale, known, drop_invalid, dropped, position)
            position += len(raw)
            frames.append(rows.assign(split=split) if split else rows)
        interactions = merge_duplicates(
            pd.concat(frames, ignore_index=True), self.duplicates, drop_invalid, dropped, columns.item
        )
        if "split" in interactions.columns:
            log.info("read RecBole's benchmark split; data.split.strategy=source trains and tests on it")
        items = tables["item"]
        if items is None:
            item_ids = np.sort(interactions["item_id"].unique())
            items = pd.DataFrame({"item_id": item_ids, ID_FIELD: [str(i) for i in item_ids]})
        return SourceTables(interactions=interactions, items=items, users=tables["user"], dropped=dropped)
