"""The protocol's filters and leakage guards: each filter against a reference computed another way, each guard
shown to fire on a split that breaks it, and every strategy run end to end through the datamodule."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

from lmrec.data.datamodule import RecDataModule
from lmrec.data.filters import implicit_feedback, kcore, text_filter
from lmrec.data.leakage import LeakageError, check_cold, check_last_by_time, check_time_order, check_train_inputs
from lmrec.data.sources.base import Source, SourceTables
from lmrec.data.sparse import CSRMatrix
from lmrec.data.splits import STRATEGIES, TEST, TRAIN, VAL
from lmrec.errors import ConfigError


class TableSource(Source):
    """A source over tables built in memory (its one input file only feeds the cache key)."""

    item_fields: ClassVar[tuple[str, ...]] = ("title",)

    def __init__(self, root, interactions: pd.DataFrame, items: pd.DataFrame) -> None:
        super().__init__(root)
        self.tables = SourceTables(interactions=interactions, items=items)
        (self.root / "input.txt").write_text(str(len(interactions)))

    def files(self) -> list[str]:
        return ["input.txt"]

    def read(self, drop_invalid: bool = False) -> SourceTables:
        return SourceTables(self.tables.interactions.copy(), self.tables.items.copy())


def random_tables(seed: int = 0, n: int = 3000, users: int = 60, items: int = 120) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    pairs = np.unique(np.c_[rng.integers(0, users, n), rng.zipf(1.5, n) % items], axis=0)
    interactions = pd.DataFrame(
        {
            "user_id": pairs[:, 0] + 100,
            "item_id": pairs[:, 1] + 1000,
            "rating": rng.integers(1, 6, len(pairs)).astype(np.float32),
            "timestamp": rng.integers(0, 200, len(pairs)).astype(np.int64),  # many ties
        }
    )
    titles = [("" if i % 17 == 0 else " ".join(["word"] * (i % 5 + 1))) for i in range(items)]
    return interactions, pd.DataFrame({"item_id": np.arange(items) + 1000, "title": titles})


def naive_kcore(pairs: set[tuple[int, int]], user_k: int, item_k: int) -> set[tuple[int, int]]:
    while True:
        users = pd.Series([u for u, _ in pairs]).value_counts()
        items = pd.Series([i for _, i in pairs]).value_counts()
        kept = {(u, i) for u, i in pairs if users[u] >= user_k and items[i] >= item_k}
        if kept == pairs:
            return kept
        pairs = kept


def test_kcore_matches_a_naive_loop_and_holds_afterwards():
    interactions, _ = random_tables()
    kept, step = kcore(interactions, 5, 4)
    pairs = set(zip(interactions["user_id"], interactions["item_id"], strict=True))
    assert set(zip(kept["user_id"], kept["item_id"], strict=True)) == naive_kcore(pairs, 5, 4)
    assert kept["user_id"].value_counts().min() >= 5 and kept["item_id"].value_counts().min() >= 4
    assert step.rows == len(interactions) - len(kept) > 0
    assert step.users == interactions["user_id"].nunique() - kept["user_id"].nunique()
    assert kcore(interactions, 0, 1) == (interactions, None)


def test_implicit_threshold_and_text_filters_count_what_they_remove(caplog):
    interactions, items = random_tables()
    with caplog.at_level(logging.INFO, logger="lmrec.data.filters"):
        positives, step = implicit_feedback(interactions, 4)
    assert (positives["rating"] >= 4).all() and len(positives) == int((interactions["rating"] >= 4).sum())
    assert step.rows == len(interactions) - len(positives) and "implicit (rating >= 4): removed" in caplog.text
    items = items.assign(text=items["title"])
    kept, kept_items, step = text_filter(interactions, items, min_words=3, require_text=True)
    words = items["title"].str.split().str.len()
    assert set(kept_items["item_id"]) == set(items["item_id"][words >= 3])
    assert step.items == int((words < 3).sum()) and set(kept["item_id"]) <= set(kept_items["item_id"])
    _, no_text_items, step = text_filter(interactions, items, min_words=0, require_text=True)
    assert step.items == int((items["title"] == "").sum()) == 8  # items 0, 17, ..., 119
    assert implicit_feedback(interactions, None) == (interactions, None)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_passes_the_guards_and_keeps_training_inputs_clean(tmp_path, strategy):
    interactions, items = random_tables(1)
    if strategy == "source":
        interactions["split"] = np.random.default_rng(0).choice(["train", "train", "val", "test"], len(interactions))
    source = TableSource(tmp_path, interactions, items)
    module = RecDataModule(source, split={"strategy": strategy, "cold_share": 0.25}, kcore={"user": 3, "item": 2})
    data = module.prepare()
    frame = data.interactions
    history = module.train_history()  # runs the training-input guard
    train = frame[frame["split"] == TRAIN]
    expected = CSRMatrix.from_pairs(
        torch.tensor(train["user_idx"].to_numpy()), torch.tensor(train["item_idx"].to_numpy()), history.shape
    )
    assert torch.equal(history.crow, expected.crow) and torch.equal(history.col, expected.col)
    held = frame[frame["split"] != TRAIN]
    train_pairs = set(zip(train["user_idx"], train["item_idx"], strict=True))
    assert not train_pairs & set(zip(held["user_idx"], held["item_idx"], strict=True))
    assert frame.groupby("user_idx").size().min() >= 3 and frame.groupby("item_idx").size().min() >= 2  # k-core
    if strategy in ("cold_items", "cold_users"):
        column = "item_idx" if strategy == "cold_items" else "user_idx"
        cold = set(held[column]) - set(train[column])
        assert len(cold) >= round(0.25 * frame[column].nunique())
    if strategy == "temporal_loo":
        last = frame.sort_values(["user_idx", "timestamp"], kind="stable").groupby("user_idx").tail(1)
        assert (frame.loc[last.index, "split"] == TEST).all()


def test_loo_guard_fires_when_the_test_row_is_not_the_last():
    users = np.array([0, 0, 0, 1, 1, 1])
    times = np.array([1, 2, 3, 1, 2, 3])
    check_last_by_time(users, times, np.array([TRAIN, VAL, TEST, TRAIN, VAL, TEST]))
    with pytest.raises(LeakageError, match="1 test rows are not the user's last"):
        check_last_by_time(users, times, np.array([TRAIN, VAL, TEST, TRAIN, TEST, VAL]))
    with pytest.raises(LeakageError, match="more than one test"):
        check_last_by_time(users, times, np.array([TRAIN, TEST, TEST, TRAIN, VAL, TEST]))


def test_time_order_and_cold_guards_fire():
    with pytest.raises(LeakageError, match="train rows are not before the first validation row"):
        check_time_order(np.array([1, 5, 3, 9]), np.array([TRAIN, TRAIN, VAL, TEST]))
    items = np.array([0, 1, 2, 2, 3])
    cold = {VAL: np.array([2]), TEST: np.array([3])}
    check_cold(items, np.array([TRAIN, TRAIN, VAL, VAL, TEST]), cold, 0, "item")
    with pytest.raises(LeakageError, match="1 cold items have training interactions"):
        check_cold(items, np.array([TRAIN, TRAIN, VAL, TRAIN, TEST]), cold, 0, "item")
    with pytest.raises(LeakageError, match="rows of validation-only cold items"):
        check_cold(items, np.array([TRAIN, TRAIN, VAL, TEST, TEST]), cold, 0, "item")


def test_training_input_guard_fires_on_a_matrix_with_a_held_out_pair(tmp_path, monkeypatch):
    source = TableSource(tmp_path, *random_tables(2))
    module = RecDataModule(source)
    module.prepare()
    frame = module.data.interactions
    test_row = frame[frame["split"] == TEST].iloc[0]
    leaky = torch.cat([module.splits.tensors("train")[i] for i in (0, 1)]).reshape(2, -1)
    users = torch.cat([leaky[0], torch.tensor([int(test_row["user_idx"])])])
    items = torch.cat([leaky[1], torch.tensor([int(test_row["item_idx"])])])
    shape = (module.num_users, module.num_items)
    monkeypatch.setattr(module.splits, "matrix", lambda *splits: CSRMatrix.from_pairs(users, items, shape))
    with pytest.raises(LeakageError, match="training matrix differs"):
        module.train_history()


def test_training_input_guard_fires_on_a_held_out_pair():
    crow, col = np.array([0, 2, 3]), np.array([1, 4, 0])  # user 0: items 1, 4; user 1: item 0
    train_keys = np.array([1, 4, 5])
    check_train_inputs(crow, col, train_keys, np.array([2, 6]), num_items=5)
    with pytest.raises(LeakageError, match="1 validation/test pairs are training inputs"):
        check_train_inputs(crow, col, train_keys, np.array([2, 4]), num_items=5)


def test_filters_are_counted_in_the_processed_data_and_the_card(tmp_path):
    interactions, items = random_tables(3)
    module = RecDataModule(
        TableSource(tmp_path, interactions, items),
        cache_dir=str(tmp_path / "cache"),
        implicit={"threshold": 3},
        kcore={"user": 4, "item": 4},
        filters={"require_text": True},
        split={"strategy": "temporal_loo", "max_history": 6},
    )
    data = module.prepare()
    names = [step["name"] for step in data.filters]
    assert names == ["implicit", "text", "kcore", "max_history"]
    positives = interactions[interactions["rating"] >= 3]
    with_text = positives[positives["item_id"].isin(items["item_id"][items["title"] != ""])]
    pairs = naive_kcore(set(zip(with_text["user_id"], with_text["item_id"], strict=True)), 4, 4)
    assert sum(step["rows"] for step in data.filters[:3]) == len(interactions) - len(pairs)
    assert len(data.interactions) == len(pairs) - data.filters[3]["rows"]
    assert data.interactions[data.interactions["split"] == TRAIN].groupby("user_idx").size().max() <= 6
    assert data.num_items == len({i for _, i in pairs})  # items under their k leave the catalogue, counted
    assert data.filters[2]["items"] == int((items["title"] != "").sum()) - data.num_items
    card = module.data_card()
    assert card["figures"]["filters"] == data.filters and card["protocol"]["kcore"] == [4, 4]
    again = RecDataModule(
        TableSource(tmp_path, interactions, items),
        cache_dir=str(tmp_path / "cache"),
        implicit={"threshold": 3},
        kcore={"user": 4, "item": 4},
        filters={"require_text": True},
        split={"strategy": "temporal_loo", "max_history": 6},
    ).prepare()
    assert again.cache_hit and again.filters == data.filters


def test_bad_filter_options_raise_before_loading(tmp_path):
    source = TableSource(tmp_path, *random_tables())
    with pytest.raises(ConfigError, match="data.kcore.user=-1"):
        RecDataModule(source, kcore={"user": -1})
    with pytest.raises(ConfigError, match="data.filters.min_text_words=-2"):
        RecDataModule(source, filters={"min_text_words": -2})
    with pytest.raises(ConfigError, match="data.split.cold_share=0"):
        RecDataModule(source, split={"strategy": "cold_users", "cold_share": 0})
