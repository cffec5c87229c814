"""RecBole atomic files: typed headers, `.inter` / `.item` / `.user`, and a benchmark split as the `split` column.

The fixtures follow RecBole's own ml-100k atomic files (tab-separated, `field:type` headers, `token_seq` titles).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from lmrec.config.compose import compose_config
from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.recbole_atomic import RecBoleAtomic
from lmrec.errors import ConfigError

INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    '2\t"GoldenEye, ""007"""\t1995\tAction Adventure Thriller\n'
    "3\tFour Rooms\t1995\t\n"
)
USER = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n1\t24\tM\ttechnician\t85711\n"
USER += "2\t53\tF\tother\t94043\n"


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8", newline="")
    return root


def test_inter_item_and_user_files(tmp_path):
    root = write(
        tmp_path / "ml-100k",
        {
            "ml-100k.inter": INTER + "1\t2\t3\t881250949\n2\t1\t5.0\t891717742.0\n1\t3\t1\t878887116\n",
            "ml-100k.item": ITEM,
            "ml-100k.user": USER,
        },
    )
    src = RecBoleAtomic(root)  # dataset: the folder's name, as RecBole names its files
    assert src.item_fields == ("movie_title", "release_year", "class")
    assert src.user_fields == ("age", "gender", "occupation", "zip_code")
    assert src.files() == ["ml-100k.inter", "ml-100k.item", "ml-100k.user"]
    tables = src.read()
    assert tables.interactions.to_dict("list") == {
        "user_id": [1, 2, 1],
        "item_id": [2, 1, 3],
        "rating": [3.0, 5.0, 1.0],
        "timestamp": [881250949, 891717742, 878887116],
    }
    assert tables.items["movie_title"].tolist() == ["Toy Story", 'GoldenEye, "007"', "Four Rooms"]
    assert tables.items["class"].tolist() == ["Animation Children's Comedy", "Action Adventure Thriller", ""]
    assert tables.users.loc[1].to_dict() == {
        "user_id": 2, "age": "53", "gender": "F", "occupation": "other", "zip_code": "94043",
    }  # fmt: skip


def test_benchmark_split_becomes_the_split_column(tmp_path):
    root = write(
        tmp_path / "d",
        {
            "shop.inter": INTER + "9\t9\t1\t1\n",  # ignored: the three split files take precedence
            "shop.train.inter": "user_id:token\titem_id:token\nA1\tB01\nA2\tB01\nA1\tB02\n",
            "shop.valid.inter": "user_id:token\titem_id:token\nA2\tB02\n",
            "shop.test.inter": "user_id:token\titem_id:token\nA1\tB03\n",
        },
    )
    src = RecBoleAtomic(root, dataset="shop")
    assert src.files() == ["shop.train.inter", "shop.valid.inter", "shop.test.inter"]
    assert src.item_fields == ("id",)  # no .item file: the id is the only text
    got = src.read().interactions
    assert got.to_dict("list") == {
        "user_id": ["A1", "A2", "A1", "A2", "A1"],
        "item_id": ["B01", "B01", "B02", "B02", "B03"],
        "rating": [1.0] * 5,  # no rating column: implicit feedback
        "timestamp": [0, 1, 2, 3, 4],  # no time column: position, train then valid then test
        "split": ["train", "train", "train", "val", "test"],
    }
    assert "split" not in RecBoleAtomic(root, dataset="shop", benchmark_filename=None).read().interactions


def test_named_benchmark_files_must_exist(tmp_path):
    root = write(tmp_path / "d", {"d.part1.inter": INTER, "d.part2.inter": INTER})
    src = RecBoleAtomic(root, benchmark_filename=["part1", "part2", "part3"])
    with pytest.raises(DataValidationError, match=r"d\.part3\.inter: file not found"):
        src.files()
    with pytest.raises(ConfigError, match="benchmark_filename='train'"):
        RecBoleAtomic(root, benchmark_filename="train")


def test_bad_value_names_the_split_file_and_line(tmp_path):
    root = write(
        tmp_path / "d",
        {
            "d.train.inter": INTER + "1\t1\t4\t10\n",
            "d.valid.inter": INTER + "1\t2\t4\t11\n2\t1\tfive\t12\n",
            "d.test.inter": INTER + "2\t2\t4\t13\n",
        },
    )
    with pytest.raises(DataValidationError, match=r"d\.valid\.inter:3: column 'rating:float': expected a number"):
        RecBoleAtomic(root).read()


def test_a_pair_repeated_across_split_files_names_both(tmp_path):
    root = write(
        tmp_path / "d",
        {
            "d.train.inter": INTER + "1\t1\t4\t10\n",
            "d.valid.inter": INTER + "1\t2\t4\t11\n",
            "d.test.inter": INTER + "2\t2\t4\t13\n1\t1\t3\t14\n",
        },
    )
    with pytest.raises(
        DataValidationError, match=r"d\.test\.inter:3: column 'item_id:token': .*item 1 on line 2 of .*d\.train\.inter"
    ):
        RecBoleAtomic(root).read()
    tables = RecBoleAtomic(root, duplicates="last").read()
    assert tables.interactions[["user_id", "item_id", "split"]].to_numpy().tolist() == [
        [1, 2, "val"], [2, 2, "test"], [1, 1, "test"],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("inter", "where"),
    [
        ("user_id\titem_id:token\n1\t1\n", r"d\.inter:1: column 'user_id': expected a typed header name:type"),
        ("user_id:token\titem_id:int\n1\t1\n", r"d\.inter:1: column 'item_id:int': expected a typed header"),
        ("user_id:token\titem_id:token\trating:token\n1\t1\t4\n", r"d\.inter:1: column 'rating:token': expected rat"),
        ("user_id:token\titem:token\n1\t1\n", r"d\.inter:1: missing column 'item_id'"),
        (
            "user_id:token\titem_id:token\n1\t7\n",
            r"d\.inter:2: column 'item_id:token': unknown item: .* not in d\.item",
        ),
    ],
)
def test_bad_headers_and_unknown_items(tmp_path, inter, where):
    root = write(tmp_path / "d", {"d.inter": inter, "d.item": "item_id:token\ttitle:token_seq\n1\tA\n"})
    with pytest.raises(DataValidationError, match=where):
        RecBoleAtomic(root).read()


def test_id_types(tmp_path):
    root = write(tmp_path / "d", {"d.inter": "user_id:token\titem_id:token\n1\t0439\n2\tB12\n"})
    got = RecBoleAtomic(root).read().interactions  # auto: users are integers, "0439" keeps its zero
    assert got["user_id"].tolist() == [1, 2] and got["item_id"].tolist() == ["0439", "B12"]
    assert RecBoleAtomic(root, id_type="str").read().interactions["user_id"].tolist() == ["1", "2"]
    with pytest.raises(DataValidationError, match=r"d\.inter:3: column 'item_id:token': expected an integer item id"):
        RecBoleAtomic(root, id_type="int").read()


def test_shipped_config(tmp_path):
    root = write(tmp_path / "ml-100k", {"ml-100k.inter": INTER + "1\t1\t4\t5\n", "ml-100k.item": ITEM})
    cfg = compose_config("train", ["data=recbole_atomic", f"data.source.root={root}"])
    src = instantiate(cfg.data.source)
    assert src.item_fields == ("movie_title", "release_year", "class") and src.duplicates == "error"
    assert src.read().interactions["item_id"].tolist() == [1]
