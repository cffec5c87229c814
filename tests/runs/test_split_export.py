"""`export_split`: the exact split as CSV and as RecBole atomic files, read back identically by lmrec and RecBole."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from lmrec.data.datamodule import RecDataModule
from lmrec.data.processed import ProcessedData
from lmrec.data.sources.movielens import MovieLensLatest
from lmrec.data.sources.recbole_atomic import RecBoleAtomic
from lmrec.data.splits import STRATEGIES
from lmrec.runs.split_export import export_split, recbole_files, split_frame
from tests.conftest import BUNDLED_DATA


def tiny() -> ProcessedData:
    """Two users, three items (one never interacted with), text ids, a title with a tab and quotes."""
    return ProcessedData(
        interactions=pd.DataFrame(
            {
                "user_idx": [0, 0, 1, 1],
                "item_idx": [0, 1, 0, 1],
                "rating": np.array([4.0, 3.25, 1.0, 5.0], dtype=np.float32),
                "timestamp": [10, 20, 30, 40],
                "split": np.array([0, 1, 2, 0], dtype=np.int8),
            }
        ),
        users=pd.DataFrame({"user_id": ["A1", "A2"], "country": ["NO", None]}),
        items=pd.DataFrame(
            {
                "item_id": ["B01", "B02", "B03"],
                "text": ["rendered", "by the", "template"],
                "title": ['Say "Hi"', "Tab\there", ""],
            }
        ),
    )


def test_exact_atomic_files(tmp_path):
    out = tmp_path / "split"
    paths = export_split(tiny(), out)
    assert paths == {s: out / f"{s}.csv" for s in ("train", "val", "test")}
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    assert (out / "split.train.inter").read_text() == header + "A1\tB01\t4.0\t10\nA2\tB02\t5.0\t40\n"
    assert (out / "split.valid.inter").read_text() == header + "A1\tB02\t3.25\t20\n"
    assert (out / "split.test.inter").read_text() == header + "A2\tB01\t1.0\t30\n"
    assert (out / "split.item").read_text() == (
        'item_id:token\ttitle:token_seq\nB01\t"Say ""Hi"""\nB02\t"Tab\there"\nB03\t\n'
    )  # every catalogue item, its fields quoted as RecBole's reader (pandas) expects; `text` is lmrec's own
    assert (out / "split.user").read_text() == "user_id:token\tcountry:token_seq\nA1\tNO\nA2\t\n"
    assert recbole_files(out) == [
        out / n for n in ("split.train.inter", "split.valid.inter", "split.test.inter", "split.item")
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["train.csv", "val.csv", "test.csv", "split.train.inter", "split.valid.inter", "split.test.inter",
         "split.item", "split.user"]
    )  # fmt: skip


def test_str_ids_round_trip_through_the_atomic_source(tmp_path):
    data = tiny()
    export_split(data, tmp_path / "shop")
    tables = RecBoleAtomic(tmp_path / "shop", id_type="str").read()
    expected = pd.concat([split_frame(data, s).assign(split=s) for s in ("train", "val", "test")], ignore_index=True)
    got = tables.interactions.rename(columns={"user_id": "user", "item_id": "item"})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert tables.items.to_dict("list") == {"item_id": ["B01", "B02", "B03"], "title": ['Say "Hi"', "Tab\there", ""]}
    assert tables.users.to_dict("list") == {"user_id": ["A1", "A2"], "country": ["NO", ""]}


def test_a_failed_export_leaves_no_file(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = pd.DataFrame.to_csv

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # the three CSVs and two of the atomic files are written by now
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing)
    with pytest.raises(OSError, match="disk full"):
        export_split(tiny(), tmp_path / "split")
    assert list((tmp_path / "split").iterdir()) == []  # no partial export, no temporary file left


@pytest.fixture(scope="module")
def bundled_split(tmp_path_factory):
    data = RecDataModule(MovieLensLatest(BUNDLED_DATA), max_users=40).prepare()
    out = tmp_path_factory.mktemp("run") / "split"
    export_split(data, out)
    return data, out


def test_bundled_split_round_trips_identically(bundled_split):
    data, out = bundled_split
    tables = RecBoleAtomic(out, rating_min=0.5).read()
    expected = pd.concat([split_frame(data, s).assign(split=s) for s in ("train", "val", "test")], ignore_index=True)
    got = tables.interactions.rename(columns={"user_id": "user", "item_id": "item"})
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["user"].dtype == data.users["user_id"].dtype  # integer ids come back as integers
    for field in ("title", "genres", "tags"):
        assert tables.items[field].tolist() == data.items[field].tolist()


@pytest.mark.filterwarnings("ignore::Warning")  # RecBole 1.2.1's own pandas-3 warnings (chained assignment)
def test_recbole_reads_the_exported_split(bundled_split, tmp_path, monkeypatch):
    pytest.importorskip("recbole")
    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, old):  # RecBole 1.2.1 still names aliases that numpy 2 removed
            setattr(np, old, new)
    from recbole.config import Config
    from recbole.data import create_dataset

    data, out = bundled_split
    config = Config(
        model="Pop",
        dataset=out.name,
        config_dict={
            "data_path": str(out.parent),
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"], "item": ["item_id"]},
            "use_gpu": False,
            "show_progress": False,
            "checkpoint_dir": str(tmp_path / "saved"),
        },
    )
    monkeypatch.setattr(logging.getLogger(), "level", logging.ERROR)  # RecBole's chatter; restored after
    dataset = create_dataset(config)
    sizes = [len(data.split(s)) for s in ("train", "val", "test")]
    assert dataset.file_size_list == sizes
    assert (dataset.user_num - 1, dataset.item_num - 1) == (data.num_users, data.num_items)  # 0 is padding
    users = dataset.field2id_token["user_id"][dataset.inter_feat["user_id"].to_numpy()]
    items = dataset.field2id_token["item_id"][dataset.inter_feat["item_id"].to_numpy()]
    expected = pd.concat([split_frame(data, s) for s in ("train", "val", "test")], ignore_index=True)
    assert users.astype(np.int64).tolist() == expected["user"].tolist()
    assert items.astype(np.int64).tolist() == expected["item"].tolist()
    assert dataset.inter_feat["rating"].to_numpy().tolist() == expected["rating"].astype(np.float64).tolist()


@pytest.mark.skipif("source" not in STRATEGIES, reason="data.split.strategy=source is not in this tree yet")
def test_lmrec_trains_on_the_exported_split_unchanged(bundled_split):
    data, out = bundled_split
    template = ["{title}", "Genres: {genres}", "Tags: {tags}"]
    back = RecDataModule(
        RecBoleAtomic(out, rating_min=0.5), split={"strategy": "source"}, text={"template": template}
    ).prepare()
    pd.testing.assert_frame_equal(back.items, data.items)
    pd.testing.assert_frame_equal(back.users, data.users)
    key = ["user_idx", "item_idx"]  # the atomic files list train, then valid, then test: the same rows regrouped
    pd.testing.assert_frame_equal(
        back.interactions.sort_values(key).reset_index(drop=True),
        data.interactions.sort_values(key).reset_index(drop=True),
    )
