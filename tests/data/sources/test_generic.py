"""Generic files: interactions (+ items, + users) in CSV / TSV / Parquet / JSONL with columns mapped in config.

Every fixture is written by the test in the format's exact bytes (BOM, CRLF, quoted commas, missing JSON fields),
and every bad input must fail naming the file, the line (Parquet: the row) and the column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hydra.utils import instantiate

from lmrec.config.compose import compose_config
from lmrec.data.datamodule import RecDataModule
from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.generic import GenericFiles
from lmrec.data.sources.movielens import MovieLensLatest
from lmrec.errors import ConfigError
from tests.conftest import BUNDLED_DATA

INTER = {"file": "ratings.csv", "user": "u", "item": "i", "rating": "r", "timestamp": "t"}
ITEMS = {"file": "items.csv", "item": "id", "fields": ["title", "genre"]}


def write(root: Path, name: str, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    data = text.replace("\n", "\r\n") if crlf else text
    (root / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return root / name


def source(root: Path, interactions=None, items=ITEMS, **kwargs) -> GenericFiles:
    return GenericFiles(root, interactions={**INTER, **(interactions or {})}, items=items, **kwargs)


def test_csv_with_bom_crlf_and_quoted_commas(tmp_path):
    write(tmp_path, "ratings.csv", "u,i,r,t\n1,10,4.5,100\n1,11,3,90\n2,10,5,80\n", bom=True, crlf=True)
    write(tmp_path, "items.csv", 'id,title,genre\n10,"Heat, The (1995)",Action\n11,"Say ""Hi""",\n', crlf=True)
    tables = source(tmp_path).read()
    got = tables.interactions
    assert got["user_id"].tolist() == [1, 1, 2] and got["item_id"].tolist() == [10, 11, 10]
    assert got["rating"].tolist() == [4.5, 3.0, 5.0] and got["timestamp"].tolist() == [100, 90, 80]
    assert got["rating"].dtype == np.float32 and got["timestamp"].dtype == np.int64
    assert tables.items.to_dict("list") == {
        "item_id": [10, 11],
        "title": ["Heat, The (1995)", 'Say "Hi"'],
        "genre": ["Action", ""],
    }
    assert tables.users is None and tables.dropped == {}


def test_headerless_tsv_with_renamed_fields_and_a_user_table(tmp_path):
    write(tmp_path, "data.tsv", "a\tx\t1\t5\nb\tx\t2\t6\nb\ty\t3\t7\n")
    write(tmp_path, "users.tsv", "uid\tage\tcity\na\t31\tOslo\nb\t22\tLyon, FR\n")
    write(tmp_path, "items.tsv", "iid\tname\nx\tPen\ny\tInk\n")
    src = GenericFiles(
        tmp_path,
        interactions={"file": "data.tsv", "header": False, "names": ["u", "i", "r", "t"], "user": "u", "item": "i",
                      "rating": "r", "timestamp": "t"},
        items={"file": "items.tsv", "item": "iid", "fields": {"product": "name"}},
        users={"file": "users.tsv", "user": "uid", "fields": ["age", "city"]},
        id_type="str",
    )  # fmt: skip
    assert src.item_fields == ("product",) and src.user_fields == ("age", "city")
    assert src.files() == ["data.tsv", "items.tsv", "users.tsv"]
    tables = src.read()
    assert tables.interactions[["user_id", "item_id"]].to_numpy().tolist() == [["a", "x"], ["b", "x"], ["b", "y"]]
    assert tables.items.to_dict("list") == {"item_id": ["x", "y"], "product": ["Pen", "Ink"]}
    assert tables.users.to_dict("list") == {"user_id": ["a", "b"], "age": ["31", "22"], "city": ["Oslo", "Lyon, FR"]}


def test_parquet_with_list_fields_and_timestamps(tmp_path):
    when = pd.to_datetime(["2024-01-01 00:00:10", "2024-01-01 00:00:00"]).as_unit("ms")
    pq.write_table(
        pa.table({"u": [7, 8], "i": ["B01", "B02"], "r": [2.0, 4.0], "t": pa.array(when, pa.timestamp("ms"))}),
        tmp_path / "inter.parquet",
    )
    pq.write_table(
        pa.table({"asin": ["B01", "B02"], "title": ["Mug", None], "cats": [["Home", "Kitchen"], []]}),
        tmp_path / "meta.parquet",
    )
    src = GenericFiles(
        tmp_path,
        interactions={"file": "inter.parquet", "user": "u", "item": "i", "rating": "r", "timestamp": "t"},
        items={"file": "meta.parquet", "item": "asin", "fields": ["title", "cats"]},
        id_type="auto",
    )
    tables = src.read()
    assert tables.interactions["user_id"].tolist() == [7, 8]  # auto: every user id is an integer
    assert tables.interactions["item_id"].tolist() == ["B01", "B02"]
    assert tables.interactions["timestamp"].tolist() == [1704067210, 1704067200]
    assert tables.items.to_dict("list") == {
        "item_id": ["B01", "B02"],
        "title": ["Mug", ""],
        "cats": ["Home, Kitchen", ""],
    }


def test_parquet_error_names_the_row(tmp_path):
    pq.write_table(pa.table({"u": [1, 2, 3], "i": [1, 1, 1], "r": [3.0, 9.0, 1.0], "t": [1, 2, 3]}), tmp_path / "x.pq")
    src = GenericFiles(tmp_path, interactions={**INTER, "file": "x.pq"})
    with pytest.raises(DataValidationError, match=r"x\.pq: column 'r': row 2: expected a number between 1\.0 and 5\.0"):
        src.read()


def test_jsonl_with_missing_optional_fields_is_implicit_in_file_order(tmp_path):
    lines = [{"user": "u1", "item": 5}, {"user": "u2", "item": 6, "extra": [1]}, {"user": "u1", "item": 6}]
    write(tmp_path, "clicks.jsonl", "\n".join(map(json.dumps, lines)) + "\n")
    meta = [{"id": 5, "title": "A", "tags": ["x", "y"]}, {"id": 6}]  # item 6 has no title and no tags
    write(tmp_path, "meta.jsonl", "\n".join(map(json.dumps, meta)) + "\n")
    src = GenericFiles(
        tmp_path,
        interactions={"file": "clicks.jsonl", "user": "user", "item": "item"},
        items={"file": "meta.jsonl", "item": "id", "fields": ["title", "tags"]},
        id_type="auto",
    )
    tables = src.read()
    got = tables.interactions
    assert got["user_id"].tolist() == ["u1", "u2", "u1"] and got["item_id"].tolist() == [5, 6, 6]
    assert got["rating"].tolist() == [1.0, 1.0, 1.0]  # no rating column: implicit feedback
    assert got["timestamp"].tolist() == [0, 1, 2]  # no time column: the record's position
    assert tables.items.to_dict("list") == {"item_id": [5, 6], "title": ["A", ""], "tags": ["x, y", ""]}


def test_without_an_item_table_the_id_is_the_text(tmp_path):
    write(tmp_path, "ratings.csv", "u,i,r,t\n1,30,4,1\n1,20,4,2\n")
    src = source(tmp_path, items=None)
    assert src.item_fields == ("id",) and src.template() == ("{id}",)
    assert src.read().items.to_dict("list") == {"item_id": [20, 30], "id": ["20", "30"]}


@pytest.mark.parametrize(
    ("rows", "where"),
    [
        ("1,10,abc,1", r"ratings\.csv:3: column 'r': expected a number"),
        ("x,10,4,1", r"ratings\.csv:3: column 'u': expected an integer user id \(set id_type: str"),
        ("1,10,4,yesterday", r"ratings\.csv:3: column 't': expected an integer Unix timestamp"),
        ("1,99,4,1", r"ratings\.csv:3: column 'i': unknown item: i 99 is not in items\.csv"),
        ("1,10,4,5", r"ratings\.csv:3: column 'i': duplicate interaction: user 1 already interacted with item 10 on"),
    ],
)  # fmt: skip
def test_bad_rows_name_file_line_and_column(tmp_path, rows, where):
    write(tmp_path, "ratings.csv", f"u,i,r,t\n1,10,4,1\n{rows}\n")
    write(tmp_path, "items.csv", "id,title,genre\n10,A,B\n")
    with pytest.raises(DataValidationError, match=where):
        source(tmp_path).read()


def test_wrong_json_type_names_the_line(tmp_path):
    write(tmp_path, "r.jsonl", '{"u": 1, "i": 10, "r": 4}\n\n{"u": 2, "i": 10, "r": "four"}\n')
    src = GenericFiles(tmp_path, interactions={"file": "r.jsonl", "user": "u", "item": "i", "rating": "r"})
    with pytest.raises(DataValidationError, match=r"r\.jsonl:3: column 'r': expected a number .* got 'four'"):
        src.read()


def test_missing_column_and_missing_file(tmp_path):
    write(tmp_path, "ratings.csv", "u,i,score,t\n1,10,4,1\n")
    write(tmp_path, "items.csv", "id,title,genre\n10,A,B\n")
    with pytest.raises(
        DataValidationError, match=r"ratings\.csv:1: column 'r': missing column 'r'.*found 'u', 'i', 'score'"
    ):
        source(tmp_path).read()
    with pytest.raises(DataValidationError, match=r"users\.csv: file not found"):
        source(tmp_path, users={"file": "users.csv", "user": "u"}).files()


def test_drop_invalid_drops_and_counts_unknown_items_and_repeats(tmp_path):
    write(tmp_path, "ratings.csv", "u,i,r,t\n1,10,4,1\n1,99,4,1\n2,10,9,1\n1,10,2,3\n")
    write(tmp_path, "items.csv", "id,title,genre\n10,A,B\n")
    tables = source(tmp_path).read(drop_invalid=True)
    assert tables.interactions[["user_id", "item_id", "timestamp"]].to_numpy().tolist() == [[1, 10, 1]]
    assert tables.dropped == {"ratings.csv": {"unknown item": 1, "r out of range": 1, "duplicate interaction": 1}}


def test_duplicate_policy_last_keeps_the_latest(tmp_path):
    write(tmp_path, "ratings.csv", "u,i,r,t\n1,10,4,5\n1,10,2,9\n1,10,3,1\n")
    write(tmp_path, "items.csv", "id,title,genre\n10,A,B\n")
    tables = source(tmp_path, duplicates="last").read()
    assert tables.interactions[["rating", "timestamp"]].to_numpy().tolist() == [[2.0, 9]]
    assert sum(tables.dropped["ratings.csv"].values()) == 2  # merged rows are reported
    summed = source(tmp_path, duplicates="sum").read().interactions
    assert summed[["rating", "timestamp", "weight"]].to_numpy().tolist() == [[2.0, 9, 3.0]]


def test_dates_and_text_ids_with_leading_zeros(tmp_path):
    write(tmp_path, "r.csv", "u,i,when\n007,0042,2024-01-02T00:00:00Z\n7,42,1970-01-01 00:01:00\n")
    src = GenericFiles(
        tmp_path,
        interactions={"file": "r.csv", "user": "u", "item": "i", "timestamp": "when", "timestamp_format": "iso"},
        id_type="auto",
    )
    got = src.read().interactions
    assert got["user_id"].tolist() == ["007", "7"] and got["item_id"].tolist() == ["0042", "42"]  # never 7 twice
    assert got["timestamp"].tolist() == [1704153600, 60]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interactions": {**INTER, "rate": "r"}}, r"data\.source\.interactions: unknown option\(s\) rate"),
        ({"interactions": {**INTER, "file": "r.xlsx"}}, r"data\.source\.interactions\.format=None for r\.xlsx"),
        ({"interactions": {"file": "r.csv", "user": "u"}}, r"data\.source\.interactions\.item is required"),
        ({"interactions": INTER, "items": {**ITEMS, "fields": ["item_id"]}}, r"'item_id' cannot be a text field"),
        ({"interactions": INTER, "id_type": "float"}, r"data\.source\.id_type='float'"),
        ({"interactions": {**INTER, "header": False}}, r"interactions\.header=false: set data\.source\.interactions"),
    ],
)  # fmt: skip
def test_config_mistakes_are_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GenericFiles(tmp_path, **kwargs)


def test_shipped_config_reads_the_bundled_data_like_the_movielens_source(tmp_path):
    cfg = compose_config("train", ["data=generic", f"paths.cache_dir={tmp_path}"])
    src = instantiate(cfg.data.source)
    generic = src.read()
    movielens = MovieLensLatest(BUNDLED_DATA).read()
    columns = ["user_id", "item_id", "rating", "timestamp"]
    pd.testing.assert_frame_equal(generic.interactions[columns], movielens.interactions[columns])
    # Generic files keep every field as written; the MovieLens source strips titles (one ends in a space).
    assert [t.strip() for t in generic.items["title"]] == movielens.items["title"].tolist()
    assert src.options()["interactions"]["user"] == "userId"  # the mapping is part of the cache key
    data = RecDataModule(src, cache_dir=str(tmp_path), max_users=5).prepare()
    assert data.items["text"].iloc[0].startswith("Toy Story (1995). Adventure|Animation")
