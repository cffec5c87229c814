"""MovieLens 100K: the second source, on a fixture written byte for byte in ml-100k's own format by the test.

Proves the source contract: one module (lmrec.data.sources.movielens_100k) plus one yaml (conf/data/movielens_100k)
take these files through validation, texts, splits, training and evaluation to metrics.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lmrec.cli.train import train
from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.movielens_100k import GENRES, MovieLens100K
from tests.helpers import compose_train

USERS, ITEMS, PER_USER = 24, 30, 12
OCCUPATIONS = ("technician", "writer", "student", "educator", "other")


def item_line(item: int) -> bytes:
    """`movie id | movie title | release date | video release date | IMDb URL | 19 genre flags`, latin-1."""
    title = "Misérables, Les (1995)" if item == 3 else f"Film {item} ({1990 + item % 10})"
    flags = ["1" if g in (item % 19, (item * 7) % 19) else "0" for g in range(len(GENRES))]
    date = "" if item == 5 else f"01-Jan-{1990 + item % 10}"  # ml-100k has movies with no release date
    url = f"http://us.imdb.com/M/title-exact?Film%20{item}"
    return "|".join([str(item), title, date, "", url, *flags]).encode("latin-1") + b"\n"


def write_ml100k(root: Path, *, extra_data: bytes = b"", item_lines: dict[int, bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    data = []
    for user in range(1, USERS + 1):
        for item in rng.choice(np.arange(1, ITEMS + 1), size=PER_USER, replace=False):
            data.append(f"{user}\t{item}\t{rng.integers(1, 6)}\t{874965758 + len(data) * 17}\n")
    (root / "u.data").write_bytes("".join(data).encode() + extra_data)
    items = {item: item_line(item) for item in range(1, ITEMS + 1)} | (item_lines or {})
    (root / "u.item").write_bytes(b"".join(items.values()))
    users = [f"{u}|{20 + u}|{'MF'[u % 2]}|{OCCUPATIONS[u % 5]}|{85711 + u:05d}\n" for u in range(1, USERS + 1)]
    users[2] = "3|23|M|writer|T8H1N\n"  # ml-100k has Canadian postal codes among the zip codes
    (root / "u.user").write_bytes("".join(users).encode("latin-1"))
    return root


def test_files_become_the_contract_tables(tmp_path):
    tables = MovieLens100K(write_ml100k(tmp_path)).read()
    assert len(tables.interactions) == USERS * PER_USER and tables.interactions["rating"].between(1, 5).all()
    assert [str(t) for t in tables.interactions.dtypes] == ["int64", "int64", "float32", "int64"]
    items = tables.items.set_index("item_id")
    assert items.loc[3, "title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert items.loc[1, "genres"] == "Action, Documentary"  # flags 1 and 7, in u.genre's order
    assert items.loc[5, "release_date"] == ""
    users = tables.users.set_index("user_id")
    assert users.loc[3, "zip_code"] == "T8H1N" and users.loc[4, "occupation"] == "other"
    assert list(tables.users.columns) == ["user_id", *MovieLens100K.user_fields]


def test_a_bad_row_is_located_in_its_file(tmp_path):
    root = write_ml100k(tmp_path / "rating", extra_data=b"1\t2\t6\t874965758\n")
    with pytest.raises(DataValidationError) as info:
        MovieLens100K(root).read()
    assert str(info.value).startswith(f"{root / 'u.data'}:{USERS * PER_USER + 1}: column 'rating': ")
    assert "expected a number between 1.0 and 5.0, got '6'" in str(info.value)

    bad_flag = item_line(7).replace(b"|0|", b"|2|", 1)
    root = write_ml100k(tmp_path / "flag", item_lines={7: bad_flag})
    with pytest.raises(DataValidationError, match=r"u.item:7: column '\w.*': expected a genre flag 0 or 1, got '2'"):
        MovieLens100K(root).read()

    root = write_ml100k(tmp_path / "user", extra_data=b"99\t2\t3\t874965758\n")
    with pytest.raises(DataValidationError, match="unknown user: user id 99 is not in u.user"):
        MovieLens100K(root).read()


def test_drop_invalid_drops_and_counts(tmp_path):
    root = write_ml100k(tmp_path, extra_data=b"1\t2\t6\t874965758\n2\t3\n")
    tables = MovieLens100K(root).read(drop_invalid=True)
    assert tables.dropped == {"u.data": {"malformed": 1, "rating out of range": 1}}
    assert len(tables.interactions) == USERS * PER_USER


@pytest.mark.parametrize("task", ["rating", "ranking"])
def test_the_whole_pipeline_runs_on_it_to_metrics(task, tmp_path, tiny_bert_dir):
    write_ml100k(tmp_path / "ml-100k")  # where data=movielens_100k looks: ${paths.data_dir}/ml-100k
    cfg = compose_train(
        [
            "data=movielens_100k",
            f"paths.data_dir={tmp_path}",
            f"task={task}",
            "logger=csv",
            "trainer.max_epochs=2",
            f"model.encoder.name_or_path={tiny_bert_dir}",
            "model.encoder.max_length=32",
        ],
        tmp_path / "out",
        tmp_path / "cache",
    )
    metrics = train(cfg, tmp_path / "out")
    monitored = "test/rmse" if task == "rating" else "test/ndcg@10"
    assert math.isfinite(metrics[monitored])
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["data_stats"]["users"] == USERS and info["data_stats"]["interactions"] == USERS * PER_USER
    assert set(info["data_inputs_sha256"]) == {"u.data", "u.item", "u.user"}
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())[monitored] == pytest.approx(metrics[monitored])


def test_a_template_field_this_source_lacks_is_refused_before_reading(tmp_path):
    from lmrec.cli.components import build_data
    from lmrec.errors import ConfigError

    cfg = compose_train(
        ["data=movielens_100k", f"paths.data_dir={tmp_path}", "data.text.template=['{title}','Tags: {tags}']"],
        tmp_path / "out",
        tmp_path / "cache",
    )
    with pytest.raises(ConfigError, match=r"uses field \{tags\}, which data source .*MovieLens100K does not provide"):
        build_data(cfg)  # the folder does not even exist: the template is checked first


def test_without_a_template_the_sources_default_is_used(tmp_path):
    from lmrec.data.datamodule import RecDataModule

    module = RecDataModule(MovieLens100K(write_ml100k(tmp_path)))
    assert module.options["template"] == ["{title}", "Genres: {genres}"]
    assert module.item_texts[0] == "Film 1 (1991). Genres: Action, Documentary"
