"""Amazon review sources (2023 and 2018 releases) on fixtures written by the tests in the releases' own formats."""

from __future__ import annotations

import gzip
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmrec.data.datamodule import RecDataModule
from lmrec.data.io.errors import DataValidationError
from lmrec.data.processed import load_processed
from lmrec.data.sources.amazon2018 import Amazon2018
from lmrec.data.sources.amazon2023 import Amazon2023
from lmrec.errors import ConfigError, MissingInputError

CATEGORY = "All_Beauty"
REVIEWS = [
    {
        "rating": 5.0,
        "title": "Great",
        "text": "Love it",
        "images": [],
        "asin": "B01",
        "parent_asin": "P01",
        "user_id": "U1",
        "timestamp": 1588687728923,
        "helpful_vote": 0,
        "verified_purchase": True,
    },
    {"rating": 3.0, "title": "ok", "parent_asin": "P02", "user_id": "U1", "timestamp": 1588687000000},  # no text
    {"rating": 4.0, "text": "fine &amp; good", "parent_asin": "P01", "user_id": "U2", "timestamp": 1500000000999},
    {"rating": 1, "title": "bad", "text": "broke", "parent_asin": "P03", "user_id": "0042", "timestamp": 1600000000000},
]
META = [
    {
        "main_category": "All Beauty",
        "title": "Rose  Shampoo",
        "features": ["Gentle", "Sulfate free"],
        "description": ["For daily use.", ""],
        "store": "Acme",
        "categories": ["Beauty", "Hair Care"],
        "details": {"Brand": "Zed", "Size": "8 oz"},
        "price": None,
        "parent_asin": "P01",
    },
    {"title": "Bar Soap", "details": {"Brand": "Soapco"}, "parent_asin": "P02"},  # no store: the brand from details
    {"title": "Comb", "parent_asin": "P03", "store": None, "categories": []},
    {"title": "Never reviewed", "parent_asin": "P99"},
]


def lines(records: list[dict]) -> list[bytes]:
    return [json.dumps(r).encode() for r in records]


def write(path: Path, rows: list[bytes], *, crlf: bool = False, bom: bool = False) -> Path:
    end = b"\r\n" if crlf else b"\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + b"".join(row + end for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def category(root: Path, reviews: list[bytes] | None = None, meta: list[bytes] | None = None, ext=".jsonl", **kw):
    write(root / f"{CATEGORY}{ext}", lines(REVIEWS) if reviews is None else reviews, **kw)
    write(root / f"meta_{CATEGORY}{ext}", lines(META) if meta is None else meta, **kw)
    return root


def test_reads_the_2023_release_format(tmp_path):
    tables = Amazon2023(category(tmp_path), category=CATEGORY, progress=False).read()
    expected = pd.DataFrame(
        {
            "user_id": ["U1", "U1", "U2", "0042"],  # str ids: the leading zero stays
            "item_id": ["P01", "P02", "P01", "P03"],
            "rating": np.array([5, 3, 4, 1], dtype=np.float32),
            "timestamp": np.array([1588687728, 1588687000, 1500000000, 1600000000], dtype=np.int64),  # ms -> s
        }
    )
    pd.testing.assert_frame_equal(tables.interactions, expected, check_dtype=False)
    assert tables.interactions["timestamp"].dtype == np.int64 and tables.interactions["rating"].dtype == np.float32
    items = tables.items.set_index("item_id")
    assert list(items.index) == ["P01", "P02", "P03"]  # P99 has no review: not in the catalogue
    assert items.loc["P01"].to_dict() == {
        "title": "Rose Shampoo",
        "brand": "Acme",
        "categories": "Beauty, Hair Care",
        "main_category": "All Beauty",
        "features": "Gentle Sulfate free",
        "description": "For daily use.",
        "details": "Brand: Zed; Size: 8 oz",
    }
    assert items.loc["P02", "brand"] == "Soapco" and items.loc["P02", "categories"] == ""
    assert items.loc["P03"].tolist() == ["Comb", "", "", "", "", "", ""]
    assert tables.users is None and tables.dropped == {}


@pytest.mark.parametrize(
    "variant",
    [{"ext": ".jsonl.gz"}, {"bom": True}, {"crlf": True}, {"ext": ".jsonl.gz", "bom": True, "crlf": True}],
    ids=["gz", "bom", "crlf", "gz-bom-crlf"],
)
def test_gzip_bom_and_crlf_read_as_the_plain_file(tmp_path, variant):
    plain = Amazon2023(category(tmp_path / "plain"), category=CATEGORY, progress=False).read()
    other = Amazon2023(category(tmp_path / "other", **variant), category=CATEGORY, progress=False).read()
    pd.testing.assert_frame_equal(other.interactions, plain.interactions)
    pd.testing.assert_frame_equal(other.items, plain.items)


def test_truncated_gzip_is_an_error_naming_the_file(tmp_path):
    many = [json.dumps({**REVIEWS[0], "user_id": f"U{i}", "text": f"review {i} " * 20}).encode() for i in range(3000)]
    root = category(tmp_path, reviews=many, ext=".jsonl.gz")
    path = root / f"{CATEGORY}.jsonl.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataValidationError, match=r"All_Beauty\.jsonl\.gz: truncated or corrupt gzip file") as err:
        Amazon2023(root, category=CATEGORY, progress=False).read()
    assert err.value.path == path
    path.write_bytes(b"plain text, not gzip\n")
    with pytest.raises(DataValidationError, match="truncated or corrupt gzip file"):
        Amazon2023(root, category=CATEGORY, progress=False).read()


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        (b'{"user_id": "U9", "parent_asin": ', ":3: ", "not valid JSON"),
        (b"[1, 2]", ":3: ", "expected a JSON object, got list"),
        (b'{"user_id": "U9", "parent_asin": "P01", "rating": "five", "timestamp": 1}', ":3: column 'rating'", "five"),
        (b'{"user_id": "U9", "parent_asin": "P01", "rating": 6.0, "timestamp": 1}', ":3: column 'rating'", "6.0"),
        (b'{"parent_asin": "P01", "rating": 5.0, "timestamp": 1}', ":3: column 'user_id'", "no such field"),
        (b'{"user_id": 17, "parent_asin": "P01", "rating": 5.0, "timestamp": 1}', ":3: column 'user_id'", "int 17"),
        (b'{"user_id": "U9", "parent_asin": "P01", "rating": 5.0, "timestamp": "x"}', ":3: column 'timestamp'", "x"),
        (b'{"user_id": "U9", "parent_asin": "P01", "rating": 5.0, "timestamp": 1}\xff', ":3: ", "UTF-8"),
    ],
)
def test_a_bad_review_is_reported_at_its_file_line_and_field(tmp_path, line, where, message):
    rows = lines(REVIEWS)
    root = category(tmp_path, reviews=[rows[0], rows[1], line, rows[2]])
    with pytest.raises(DataValidationError) as err:
        Amazon2023(root, category=CATEGORY, progress=False).read()
    text = str(err.value)
    assert text.startswith(f"{root / (CATEGORY + '.jsonl')}{where}") and message in text, text


def test_a_bad_metadata_record_names_the_metadata_file(tmp_path):
    root = category(tmp_path, meta=lines(META[:2]) + [b'{"title": "no id"}'])
    with pytest.raises(DataValidationError, match=r"meta_All_Beauty\.jsonl:3: column 'parent_asin'"):
        Amazon2023(root, category=CATEGORY, progress=False).read()
    root = category(tmp_path, meta=lines(META + META[:1]))
    with pytest.raises(DataValidationError, match=r"jsonl:5: column 'parent_asin': duplicate item 'P01' .*line 1"):
        Amazon2023(root, category=CATEGORY, progress=False).read()
    tables = Amazon2023(root, category=CATEGORY, duplicate_items="first", progress=False).read()
    assert tables.dropped == {"meta_All_Beauty.jsonl": {"duplicate item": 1}} and len(tables.items) == 3


def test_drop_invalid_drops_and_counts_bad_reviews(tmp_path):
    bad = b'{"user_id": "U9", "parent_asin": "P01", "rating": 0.5, "timestamp": 1}'
    root = category(tmp_path, reviews=lines(REVIEWS) + [bad, b"{oops"])
    tables = Amazon2023(root, category=CATEGORY, progress=False).read(drop_invalid=True)
    assert tables.dropped == {"All_Beauty.jsonl": {"malformed": 1, "rating out of range": 1}}
    assert len(tables.interactions) == 4


def test_unknown_item_policies(tmp_path):
    root = category(tmp_path, meta=lines([m for m in META if m["parent_asin"] != "P02"]))
    with pytest.raises(DataValidationError, match=r"jsonl:2: column 'parent_asin': unknown item: .*'P02' is not in"):
        Amazon2023(root, category=CATEGORY, unknown_items="error", progress=False).read()
    dropped = Amazon2023(root, category=CATEGORY, unknown_items="drop", progress=False).read()
    assert dropped.dropped == {"All_Beauty.jsonl": {"unknown item": 1}}
    assert dropped.interactions["item_id"].tolist() == ["P01", "P01", "P03"]
    kept = Amazon2023(root, category=CATEGORY, unknown_items="keep", progress=False).read()
    assert kept.interactions["item_id"].tolist() == ["P01", "P02", "P01", "P03"] and kept.dropped == {}
    assert kept.items.set_index("item_id").loc["P02"].tolist() == [""] * 7


def test_duplicate_review_policies(tmp_path):
    again = {"rating": 1.0, "parent_asin": "P01", "user_id": "U1", "timestamp": 1700000000000}
    root = category(tmp_path, reviews=lines(REVIEWS + [again]))
    with pytest.raises(DataValidationError, match=r"jsonl:5: column 'parent_asin': duplicate review: .*on line 1"):
        Amazon2023(root, category=CATEGORY, duplicates="error", progress=False).read()

    def pair(policy: str) -> tuple[dict, dict]:
        tables = Amazon2023(root, category=CATEGORY, duplicates=policy, progress=False).read()
        frame = tables.interactions
        row = frame[(frame["user_id"] == "U1") & (frame["item_id"] == "P01")]
        assert len(row) == 1 and len(frame) == 4 and "_row" not in frame
        return row.drop(columns=["user_id", "item_id"]).iloc[0].to_dict(), tables.dropped

    reason = "repeated (user, item) pair merged (duplicates={})"
    assert pair("first") == (
        {"rating": 5.0, "timestamp": 1588687728},
        {CATEGORY + ".jsonl": {reason.format("first"): 1}},
    )
    assert pair("last")[0] == {"rating": 1.0, "timestamp": 1700000000}
    assert pair("sum")[0] == {"rating": 1.0, "timestamp": 1700000000, "weight": 2.0}
    dropped = Amazon2023(root, category=CATEGORY, duplicates="error", progress=False).read(drop_invalid=True)
    assert dropped.dropped == {CATEGORY + ".jsonl": {"duplicate review": 1}} and len(dropped.interactions) == 4


def test_user_review_texts_are_a_user_field(tmp_path):
    root = category(tmp_path)
    source = Amazon2023(root, category=CATEGORY, user_reviews=True, progress=False)
    assert source.user_fields == ("reviews",)
    users = source.read().users.set_index("user_id")["reviews"].to_dict()
    assert users == {"U1": "ok | Great. Love it", "U2": "fine & good", "0042": "bad. broke"}  # oldest first
    short = Amazon2023(root, category=CATEGORY, user_reviews=True, user_review_chars=6, progress=False).read()
    assert short.users.set_index("user_id")["reviews"].to_dict()["U1"] == "ok | G"


def test_the_2018_format_with_python_literal_metadata(tmp_path):
    reviews = [
        {"overall": 5.0, "reviewerID": "A1", "asin": "0001", "unixReviewTime": 1389052800, "summary": "Nice"},
        {"overall": 2.0, "reviewerID": "A2", "asin": "0002", "unixReviewTime": 1389139200, "reviewText": "Meh."},
    ]
    meta = [
        b"{'asin': '0001', 'title': 'Hammer &amp; Nails', 'brand': 'Tools Co', 'categories': [['Tools', 'Hand']]}",
        b"{'asin': '0002', 'title': \"Bob's Saw\", 'description': 'Cuts wood.', 'price': 9.5}",
    ]
    write(tmp_path / "Tools.json.gz", lines(reviews))
    write(tmp_path / "meta_Tools.json.gz", meta)
    source = Amazon2018(tmp_path, category="Tools", user_reviews=True, progress=False)
    tables = source.read()
    assert tables.interactions.to_dict("list") == {
        "user_id": ["A1", "A2"],
        "item_id": ["0001", "0002"],
        "rating": [5.0, 2.0],
        "timestamp": [1389052800, 1389139200],  # already seconds
    }
    items = tables.items.set_index("item_id")
    assert items.loc["0001", ["title", "brand", "categories"]].tolist() == ["Hammer & Nails", "Tools Co", "Tools, Hand"]
    assert items.loc["0002", ["title", "description"]].tolist() == ["Bob's Saw", "Cuts wood."]
    assert tables.users.set_index("user_id")["reviews"].to_dict() == {"A1": "Nice", "A2": "Meh."}
    with pytest.raises(DataValidationError, match=r"meta_Tools\.json\.gz:1: malformed row: not valid JSON"):
        Amazon2018(tmp_path, category="Tools", syntax="json", progress=False).read()


def test_python_literal_lines_never_run_code(tmp_path):
    marker = tmp_path / "ran"
    call = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')".encode()
    write(tmp_path / "Tools.json", lines([{"overall": 5.0, "reviewerID": "A", "asin": "1", "unixReviewTime": 1}]))
    write(tmp_path / "meta_Tools.json", [b"{'asin': '1', 'title': 'ok'}", call])
    with pytest.raises(DataValidationError, match=r"meta_Tools\.json:2: malformed row: .*nor a Python literal"):
        Amazon2018(tmp_path, category="Tools", syntax="auto", progress=False).read()
    assert not marker.exists()


def test_the_whole_pipeline_prepares_and_caches_a_category(tmp_path):
    oldest = {"rating": 2.0, "parent_asin": "P03", "user_id": "U1", "timestamp": 1400000000000}
    source = Amazon2023(
        category(tmp_path / "data", reviews=lines(REVIEWS + [oldest])), category=CATEGORY, progress=False
    )
    module = RecDataModule(source, cache_dir=str(tmp_path / "cache"), split={"strategy": "temporal_loo"})
    first = load_processed(source, tmp_path / "cache", module.options)
    second = load_processed(source, tmp_path / "cache", module.options)
    assert not first.cache_hit and second.cache_hit
    pd.testing.assert_frame_equal(first.items, second.items)
    pd.testing.assert_frame_equal(first.interactions, second.interactions)
    assert first.users["user_id"].tolist() == ["0042", "U1", "U2"]
    texts = dict(zip(first.items["item_id"], first.items["text"], strict=True))
    assert texts == {
        "P01": "Rose Shampoo. Brand: Acme. Categories: Beauty, Hair Care",
        "P02": "Bar Soap. Brand: Soapco",
        "P03": "Comb",
    }
    user_u1 = first.users["user_id"].tolist().index("U1")
    u1 = first.interactions[first.interactions["user_idx"] == user_u1].sort_values("timestamp")
    assert u1["split"].tolist() == [0, 1, 2]  # temporal leave-one-out: the latest review (P01) is the test item
    assert first.items["item_id"].tolist()[u1["item_idx"].iloc[-1]] == "P01"


def test_options_are_checked_before_any_file_is_read(tmp_path):
    with pytest.raises(ConfigError, match="data.source.unknown_items='skip'"):
        Amazon2023(tmp_path, unknown_items="skip")
    with pytest.raises(ConfigError, match="data.source.item_fields"):
        Amazon2023(tmp_path, item_fields=["title", "colour"])
    source = Amazon2023(tmp_path, item_fields=["title", "brand"])
    assert source.template() == ("{title}", "Brand: {brand}")
    with pytest.raises(ConfigError, match=r"uses field \{categories\}"):
        RecDataModule(source, text={"template": ["{title}", "{categories}"]})


def test_file_names_follow_the_release(tmp_path):
    with pytest.raises(DataValidationError, match=r"file not found: expected All_Beauty with one of \.jsonl"):
        Amazon2023(tmp_path, category=CATEGORY).files()
    category(tmp_path)
    category(tmp_path, ext=".jsonl.gz")
    with pytest.raises(DataValidationError, match="are both here"):
        Amazon2023(tmp_path, category=CATEGORY).files()
    source = Amazon2023(tmp_path, reviews_file=f"{CATEGORY}.jsonl.gz", meta_file=f"meta_{CATEGORY}.jsonl")
    assert source.files() == [f"{CATEGORY}.jsonl.gz", f"meta_{CATEGORY}.jsonl"]
    assert set(source.digests()) == set(source.files())


def test_from_hub_runs_the_hubs_loading_script_only_when_allowed(tmp_path, monkeypatch):
    loads = []
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=lambda *a, **k: loads.append(k)))
    with pytest.raises(ConfigError, match=r"runs code from the hub .*data.source.trust_remote_code=true"):
        Amazon2023(tmp_path, from_hub=True)
    assert loads == [] and list(tmp_path.iterdir()) == []  # refused before anything was fetched or written


def test_from_hub_needs_the_datasets_library_or_a_network(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # not installed
    with pytest.raises(MissingInputError, match="pip install datasets"):
        Amazon2023(tmp_path, from_hub=True, trust_remote_code=True).files()
    offline = types.SimpleNamespace(load_dataset=lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    monkeypatch.setitem(sys.modules, "datasets", offline)
    with pytest.raises(MissingInputError, match="config raw_review_All_Beauty .*offline"):
        Amazon2023(tmp_path, from_hub=True, trust_remote_code=True).files()


def test_from_hub_writes_the_release_files_once(tmp_path, monkeypatch):
    calls = []

    class Table:  # what datasets.load_dataset returns, as far as the source uses it
        def __init__(self, records):
            self.records = records

        def __len__(self):
            return len(self.records)

        def to_json(self, path, lines, force_ascii):
            assert lines and not force_ascii
            Path(path).write_text("".join(json.dumps(r) + "\n" for r in self.records))

    def load_dataset(hub_id, config, split, trust_remote_code):
        assert trust_remote_code is True  # passed on as the user allowed it, never set by lmrec itself
        calls.append((hub_id, config, split))
        # the hub's Arrow tables hold `details` as a JSON string
        meta = [{**m, "details": json.dumps(m["details"])} if "details" in m else m for m in META]
        return Table(REVIEWS if config.startswith("raw_review_") else meta)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    source = Amazon2023(tmp_path, category=CATEGORY, from_hub=True, trust_remote_code=True, progress=False)
    tables = source.read()
    assert calls == [
        ("McAuley-Lab/Amazon-Reviews-2023", "raw_review_All_Beauty", "full"),
        ("McAuley-Lab/Amazon-Reviews-2023", "raw_meta_All_Beauty", "full"),
    ]
    assert tables.items.set_index("item_id").loc["P01", "details"] == "Brand: Zed; Size: 8 oz"
    assert source.files() == [f"{CATEGORY}.jsonl", f"meta_{CATEGORY}.jsonl"] and len(calls) == 2
    (tmp_path / f"meta_{CATEGORY}.jsonl").unlink()
    write(tmp_path / f"meta_{CATEGORY}.jsonl.gz", lines(META))  # only a missing file is fetched
    assert source.files() == [f"{CATEGORY}.jsonl", f"meta_{CATEGORY}.jsonl.gz"] and len(calls) == 2


@pytest.mark.parametrize("name", ["amazon2023", "amazon2018"])
def test_the_data_configs_prepare_a_category(tmp_path, name):
    from tests.helpers import compose_train, prepared_data

    root = tmp_path / name
    reviews = [
        {"user_id": f"U{u}", "parent_asin": f"P0{i}", "rating": 4.0, "timestamp": 1500000000000 + 1000 * (3 * u + i)}
        for u in range(10)
        for i in (1, 2, 3)
    ]
    if name == "amazon2023":
        category(root, reviews=lines(reviews))
    else:  # the same records in the 2018 spelling, gzipped as distributed
        renames = {"user_id": "reviewerID", "parent_asin": "asin", "rating": "overall", "timestamp": "unixReviewTime"}
        old = [{renames[k]: v // 1000 if k == "timestamp" else v for k, v in r.items()} for r in reviews]
        meta = [{"asin": m["parent_asin"], "title": m["title"], "brand": m.get("store")} for m in META]
        write(root / "Tools.json.gz", lines(old))
        write(root / "meta_Tools.json.gz", lines(meta))
    overrides = [f"data={name}", f"paths.data_dir={tmp_path}", "task=ranking"]
    overrides += ["data.source.category=Tools"] if name == "amazon2018" else []
    datamodule = prepared_data(compose_train(overrides, tmp_path / "out", tmp_path / "cache"))
    assert type(datamodule.source).__name__ == {"amazon2023": "Amazon2023", "amazon2018": "Amazon2018"}[name]
    assert datamodule.source.duplicates == "first" and datamodule.source.unknown_items == "drop"
    assert (datamodule.num_items, datamodule.num_users) == (3, 10)
    categories = ". Categories: Beauty, Hair Care" if name == "amazon2023" else ""
    assert datamodule.item_texts[0] == "Rose Shampoo. Brand: Acme" + categories
