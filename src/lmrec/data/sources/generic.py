"""Any dataset in plain files: an interactions file, plus an optional item table and user table, each CSV, TSV,
Parquet or JSON lines, with the columns named in config (`conf/data/generic.yaml` documents every option).

Why a config-driven source rather than "convert your data to MovieLens": the field's datasets arrive in every
layout, and a conversion script is one more place for a leak or a silent cast. Here the mapping is part of the
run config and the processed-cache key, and every value goes through the same checks as the built-in sources
(file, line or Parquet row, and column in every error).

- interactions: `user`, `item` columns (required); `rating` (optional: without it every interaction is implicit
  feedback with rating 1.0); `timestamp` (optional: without it the record's position in the file, so temporal
  splits follow file order), Unix seconds or dates read with `timestamp_format`.
- items (optional): the `item` id column and the text `fields` (what `data.text.template` may use). Every
  interaction's item must be in it (else an error naming the line; `drop_invalid` drops and counts such rows).
  Without an item table the catalogue is the items the interactions name, with one text field `{id}`.
- users (optional): the `user` id column and user `fields` (side information for user towers).
- `id_type`: int, str or auto (int when every id is a canonical integer such as 42, else str).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.data.sources.base import Source, SourceTables
from lmrec.data.sources.columns import FileSpec, check_id_type, choose_id_type, entity_table
from lmrec.data.sources.file_interactions import InteractionColumns, interaction_rows, merge_duplicates
from lmrec.errors import ConfigError

LAYOUT = ("file", "format", "separator", "encoding", "header", "names", "quoted")
KEYS = {
    "interactions": (*LAYOUT, "user", "item", "rating", "timestamp", "timestamp_format"),
    "items": (*LAYOUT, "item", "fields"),
    "users": (*LAYOUT, "user", "fields"),
}
#: Column names the processed tables use for themselves; a text field may not take them.
RESERVED = ("item_id", "user_id", "text", "split", "weight")
#: The item text field of a dataset without item texts: the id, as text.
ID_FIELD = "id"


def text_fields(key: str, fields: Any) -> dict[str, str]:
    """`fields` as field name -> column: a list keeps the column names, a mapping renames."""
    if fields is None:
        return {}
    if isinstance(fields, str):
        raise ConfigError(f"{key}.fields={fields!r}: expected a list of columns or a mapping field: column")
    mapping = (
        {str(k): str(v) for k, v in fields.items()} if isinstance(fields, Mapping) else {str(f): str(f) for f in fields}
    )
    for name in mapping:
        if not name.isidentifier() or name in RESERVED:
            raise ConfigError(
                f"{key}.fields: {name!r} cannot be a text field name (templates use it as {{{name}}}; "
                f"names must be identifiers other than {', '.join(RESERVED)}); rename it, e.g. {{my_name: {name!r}}}"
            )
    return mapping


def _node(key: str, node: Any, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        raise ConfigError(f"{key}={node!r}: expected a mapping with {', '.join(required)}")
    node = dict(node)
    name = key.rsplit(".", 1)[-1]
    unknown = sorted(set(node) - set(KEYS[name]))
    if unknown:
        raise ConfigError(f"{key}: unknown option(s) {', '.join(unknown)}; expected some of {', '.join(KEYS[name])}")
    for option in required:
        if not node.get(option):
            raise ConfigError(f"{key}.{option} is required (the column that holds the {option} id)")
    return node


class GenericFiles(Source):
    """Interactions (+ items, + users) from CSV / TSV / Parquet / JSONL files, columns mapped in config."""

    def __init__(
        self,
        root: str | Path,
        interactions: Mapping[str, Any],
        items: Mapping[str, Any] | None = None,
        users: Mapping[str, Any] | None = None,
        id_type: str = "int",
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.id_type = check_id_type("data.source.id_type", id_type)
        node = _node("data.source.interactions", interactions, ("user", "item"))
        self.inter_file = FileSpec.parse("data.source.interactions", node.get("file"), node)
        self.columns = InteractionColumns(
            str(node["user"]),
            str(node["item"]),
            node.get("rating") or None,
            node.get("timestamp") or None,
            node.get("timestamp_format") or None,
        )
        self.items_file = self.users_file = None
        self.item_columns: dict[str, str] = {}
        self.user_columns: dict[str, str] = {}
        if items is not None:
            node = _node("data.source.items", items, ("item",))
            self.items_file = FileSpec.parse("data.source.items", node.get("file"), node)
            self.item_id = str(node["item"])
            self.item_columns = text_fields("data.source.items", node.get("fields"))
        if users is not None:
            node = _node("data.source.users", users, ("user",))
            self.users_file = FileSpec.parse("data.source.users", node.get("file"), node)
            self.user_id = str(node["user"])
            self.user_columns = text_fields("data.source.users", node.get("fields"))
        # Instance values of the contract's class attributes: this source's fields come from its config.
        self.item_fields = tuple(self.item_columns) if self.items_file else (ID_FIELD,)
        self.user_fields = tuple(self.user_columns)
        self.default_template = None if self.item_columns else (f"{{{self.item_fields[0]}}}",)

    def files(self) -> list[str]:
        names = [spec.file for spec in (self.inter_file, self.items_file, self.users_file) if spec is not None]
        self.require(*names)
        return names

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "id_type": self.id_type,
            "interactions": {**asdict(self.inter_file), **asdict(self.columns)},
            "items": {**asdict(self.items_file), "item": self.item_id, "fields": self.item_columns}
            if self.items_file
            else None,
            "users": {**asdict(self.users_file), "user": self.user_id, "fields": self.user_columns}
            if self.users_file
            else None,
        }

    def read(self, drop_invalid: bool = False) -> SourceTables:
        self.files()
        dropped: dict[str, dict[str, int]] = {}
        known: dict[str, tuple[np.ndarray, str]] = {}
        types = {"user": self.id_type, "item": self.id_type}
        tables: dict[str, pd.DataFrame] = {}
        for what, spec in (("item", self.items_file), ("user", self.users_file)):
            if spec is None:
                continue
            id_column = self.item_id if what == "item" else self.user_id
            fields = self.item_columns if what == "item" else self.user_columns
            raw = spec.read(self.root, [id_column, *fields.values()])
            types[what] = choose_id_type(raw, id_column, self.id_type)
            tables[what] = entity_table(raw, id_column, types[what], fields, what, spec.unit, drop_invalid, dropped)
            known[what] = (tables[what][f"{what}_id"].to_numpy(), spec.file)
        raw = self.inter_file.read(self.root, self.columns.required())
        for what, column in (("user", self.columns.user), ("item", self.columns.item)):
            types[what] = choose_id_type(raw, column, types[what])
        rows = interaction_rows(
            raw,
            self.inter_file.unit,
            self.columns,
            (types["user"], types["item"]),
            (self.rating_scale.low, self.rating_scale.high),
            known,
            drop_invalid,
            dropped,
        )
        interactions = merge_duplicates(rows, self.duplicates, drop_invalid, dropped, self.columns.item)
        items = tables.get("item")
        if items is None:  # the catalogue is what the interactions name; the id is the only text
            item_ids = np.sort(interactions["item_id"].unique())
            items = pd.DataFrame({"item_id": item_ids, ID_FIELD: [str(i) for i in item_ids]})
        return SourceTables(interactions=interactions, items=items, users=tables.get("user"), dropped=dropped)
