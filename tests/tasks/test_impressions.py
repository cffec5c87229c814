"""The impression task: impressions mapped onto a run's indices, scored per impression, and wired through config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lmrec.config.arguments import BuildFacts
from lmrec.data.configured import build_source
from lmrec.data.impressions import Impressions, index_impressions
from lmrec.data.interactions import InteractionSplits
from lmrec.data.io.errors import DataValidationError
from lmrec.data.processed import ProcessedData
from lmrec.errors import ConfigError, DataError
from lmrec.tasks.base import build_task
from lmrec.tasks.impressions import ImpressionTask, score_impressions
from tests.data.sources.test_mind import write_mind
from tests.helpers import compose_train, prepared_data
from tests.runs.test_per_user import check_means


def log(users, candidates, labels, lines=None) -> Impressions:
    lengths = [len(c) for c in candidates]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = len(users)
    vocabulary = sorted({c for cs in candidates for c in cs}, reverse=True)  # not the run's item order
    return Impressions(
        path=Path("behaviors.tsv"),
        lines=np.asarray(lines or range(1, n + 1), dtype=np.int64),
        impression_ids=np.arange(1, n + 1, dtype=np.int64),
        users=np.asarray(users, dtype=object),
        timestamps=np.zeros(n, dtype=np.int64),
        items=np.asarray(vocabulary, dtype=object),
        offsets=offsets,
        candidates=np.asarray([vocabulary.index(c) for cs in candidates for c in cs], dtype=np.int32),
        labels=np.asarray([y for ys in labels for y in ys], dtype=np.int8),
    )


USER_IDS = np.array(["U1", "U2"], dtype=object)
ITEM_IDS = np.array(["N1", "N2", "N3", "N4"], dtype=object)


def test_impressions_map_to_run_indices_and_batch_flat() -> None:
    impressions = log(["U2", "U1"], [["N4", "N1"], ["N2", "N3", "N1"]], [[1, 0], [0, 0, 1]])
    dataset = index_impressions(impressions, USER_IDS, ITEM_IDS, seed=0)
    assert len(dataset) == 2 and dataset.skipped == {}
    batch = dataset.__getitems__([1, 0])
    assert batch["users"].tolist() == [0, 1]
    assert batch["items"].tolist() == [1, 2, 0, 3, 0]
    assert batch["labels"].tolist() == [0, 0, 1, 1, 0]
    assert batch["segments"].tolist() == [0, 0, 0, 1, 1]
    again = index_impressions(impressions, USER_IDS, ITEM_IDS, seed=0).__getitems__([1, 0])["tiebreak"]
    assert torch.equal(batch["tiebreak"], again)  # the same keys in every run


def test_unscorable_impressions_are_left_out_and_counted() -> None:
    impressions = log(
        ["U1", "U9", "U2", "U1"],
        [["N1", "N2"], ["N1", "N2"], ["N1", "N77"], ["N3", "N4"]],
        [[1, 0], [1, 0], [1, 0], [0, 1]],
    )
    dataset = index_impressions(impressions, USER_IDS, ITEM_IDS, seed=0)
    assert dataset.skipped == {"user not in the run's data": 1, "candidate not in the run's items": 1}
    assert dataset.users.tolist() == [0, 0] and dataset.items.tolist() == [0, 1, 2, 3]
    with pytest.raises(DataError, match="none of its 1 impressions"):
        index_impressions(log(["U9"], [["N1", "N2"]], [[1, 0]]), USER_IDS, ITEM_IDS, seed=0)


def test_an_impression_with_one_class_is_an_error_naming_its_line_or_skipped() -> None:
    impressions = log(
        ["U1", "U2", "U1"], [["N1", "N2"], ["N3", "N4"], ["N2", "N3"]], [[1, 0], [0, 0], [1, 1]], [4, 9, 12]
    )
    with pytest.raises(DataValidationError) as err:
        index_impressions(impressions, USER_IDS, ITEM_IDS, seed=0)
    assert (err.value.line, err.value.column) == (9, "impressions")
    assert (
        "impression 2 has no candidate clicked" in err.value.message and "task.single_class=skip" in err.value.message
    )
    dataset = index_impressions(impressions, USER_IDS, ITEM_IDS, seed=0, single_class="skip")
    assert len(dataset) == 1 and dataset.skipped == {"only one class (all clicked or none)": 2}


class TableScorer:
    """Scores from a fixed [users, items] table; counts the calls so the scoring layout can be checked."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table, self.calls = table, []

    def score_candidates(self, users, items):
        self.calls.append((len(users), len(items)))
        return self.table[users][:, items]

    def score_pairs(self, users, items):
        return self.table[users, items]


class FakeLog:
    def __init__(self, impressions: Impressions) -> None:
        self.log = impressions

    def impressions(self, split: str, drop_invalid: bool = False) -> Impressions:
        return self.log


def splits_with_ids() -> InteractionSplits:
    """Two users and four items; U1 has a training click, U2 only a test one (a user new at evaluation time)."""
    frame = pd.DataFrame(
        {"user_idx": [0, 1], "item_idx": [0, 1], "rating": [1.0, 1.0], "timestamp": [0, 1], "split": [0, 2]}
    )
    items = pd.DataFrame({"item_id": ITEM_IDS, "text": [""] * 4})
    splits = InteractionSplits(
        ProcessedData(interactions=frame, users=pd.DataFrame({"user_id": USER_IDS}), items=items)
    )
    splits.user_ids, splits.item_ids = USER_IDS, ITEM_IDS  # what the run's id tables hold
    return splits


def test_task_scores_each_impression_with_the_leaderboard_metrics(caplog: pytest.LogCaptureFixture) -> None:
    impressions = log(["U1", "U2"], [["N1", "N2", "N3"], ["N4", "N3", "N2", "N1"]], [[0, 1, 0], [0, 0, 1, 1]])
    task = ImpressionTask(FakeLog(impressions), ties="pessimistic")
    with caplog.at_level("INFO", logger="lmrec.tasks.impressions"):
        dataset = task.eval_dataset(splits_with_ids(), "val")
    assert "val: 2 impressions, 1 of them of users without a training click" in caplog.text
    table = torch.tensor([[0.3, 0.2, 0.1, 0.0], [0.9, 0.8, 0.7, 0.6]])
    model = TableScorer(table)
    metrics = task.make_metrics()
    task.update_metrics(metrics, model, dataset.__getitems__([0, 1]))
    assert model.calls == [(2, 4)]  # each user once, against the batch's distinct candidates
    values = metrics["impression"].compute()
    # U1: the click N2 at rank 2 of 3 -> AUC 1/2, MRR 1/2, nDCG 1/log2(3).
    # U2 scores N1 > N2 > N3 > N4: clicks N2, N1 at ranks 2, 1 -> AUC 1, MRR (1 + 1/2) / 2, nDCG 1.
    expected = {
        "impression/auc": (0.5 + 1.0) / 2,
        "impression/mrr": (0.5 + 0.75) / 2,
        "impression/ndcg@5": (1 / math.log2(3) + 1.0) / 2,
        "impression/ndcg@10": (1 / math.log2(3) + 1.0) / 2,
    }
    assert {k: v.item() for k, v in values.items()} == pytest.approx(expected, abs=1e-12)
    assert task.metric_names() == list(expected)


def test_block_scoring_equals_pair_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lmrec.tasks.impressions.SCORE_BLOCK", 3)  # force several blocks
    generator = torch.Generator().manual_seed(0)
    model = TableScorer(torch.rand(5, 7, generator=generator))
    users = torch.tensor([4, 0, 4, 2])
    segments = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    items = torch.tensor([6, 1, 1, 0, 3, 6, 2])
    scores = score_impressions(model, users, items, segments)
    assert torch.equal(scores, model.score_pairs(users[segments], items))
    assert len(model.calls) > 1


def mind_cfg(tmp_path: Path, *overrides: str):
    root = write_mind(tmp_path / "data" / "mind")
    return compose_train(
        [
            "data=mind_small",
            "task=impressions",
            f"paths.data_dir={root.parent}",
            "data.source.val_from=dev",
            "data.source.val_share=0.5",
            "seed=3",
            "logger=csv",
            *overrides,
        ],
        tmp_path / "out",
        tmp_path / "cache",
    )


def _task(cfg):
    return build_task(cfg.task, BuildFacts("task", source=build_source(cfg.data.source), data=cfg.data))


def test_config_checks_fail_before_any_file_is_read(tmp_path: Path) -> None:
    cfg = mind_cfg(tmp_path, "data.split.strategy=random")
    with pytest.raises(ConfigError, match="data.split.strategy=source"):
        _task(cfg)
    cfg = compose_train(["task=impressions", "logger=csv"], tmp_path / "o2", tmp_path / "c2")
    with pytest.raises(ConfigError, match="has none"):
        _task(cfg)
    cfg = mind_cfg(tmp_path / "t", "task.ties=first")
    with pytest.raises(ConfigError, match="task.ties"):
        _task(cfg)
    cfg = mind_cfg(tmp_path / "s", "task.sampled_eval=[{negatives: 100}]")
    with pytest.raises(ConfigError, match="task.sampled_eval is a full-ranking evaluation option"):
        _task(cfg)
    # The ranking task's training options pass through.
    cfg = mind_cfg(tmp_path / "b", "task.loss=bpr", "task.num_negatives=2")
    task = _task(cfg)
    assert (task.loss, task.negatives, task.num_negatives, task.impression_ks) == ("bpr", "sampled", 2, (5, 10))


def splits_carry_ids() -> bool:
    """Whether InteractionSplits exposes the run's id tables (the hook the impression task reads)."""
    frame = pd.DataFrame({"user_idx": [0], "item_idx": [0], "rating": [1.0], "timestamp": [0], "split": [0]})
    users, items = pd.DataFrame({"user_id": ["U1"]}), pd.DataFrame({"item_id": ["N1"], "text": [""]})
    return hasattr(InteractionSplits(ProcessedData(interactions=frame, users=users, items=items)), "user_ids")


@pytest.fixture
def run_ids_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until lmrec.data.interactions provides the run's id tables, the tests add them the same way."""
    if splits_carry_ids():
        return
    original = InteractionSplits.__init__

    def with_ids(self, data):
        original(self, data)
        self.user_ids, self.item_ids = data.users["user_id"].to_numpy(), data.items["item_id"].to_numpy()

    monkeypatch.setattr(InteractionSplits, "__init__", with_ids)


def test_mind_fixture_end_to_end_through_the_datamodule(tmp_path: Path, run_ids_hook: None) -> None:
    datamodule = prepared_data(mind_cfg(tmp_path))
    task = datamodule.task
    draw = np.random.default_rng(3).random(3)
    val_ids = [i for i in (1, 2) if draw[i] < 0.5]
    batch = next(iter(datamodule.val_dataloader()))
    assert len(batch["users"]) == len(val_ids)
    users = datamodule.data.users["user_id"].tolist()
    items = datamodule.data.items["item_id"].tolist()
    by_id = {1: ("U1", ["N5", "N3"]), 2: ("U3", ["N2", "N5", "N1"])}
    assert [users[u] for u in batch["users"].tolist()] == [by_id[i][0] for i in val_ids]
    assert [items[i] for i in batch["items"].tolist()] == [n for i in val_ids for n in by_id[i][1]]
    # A model that scores the clicked news N5 highest gets perfect metrics on every evaluated impression.
    table = torch.zeros(datamodule.num_users, datamodule.num_items)
    table[:, items.index("N5")] = 1.0
    metrics = task.make_metrics()
    for loader in (datamodule.val_dataloader(), datamodule.test_dataloader()):
        for batch in loader:
            task.update_metrics(metrics, TableScorer(table), batch)
    assert all(v.item() == 1.0 for v in metrics["impression"].compute().values())


def test_training_run_logs_the_impression_metrics(tmp_path: Path, run_ids_hook: None) -> None:
    from lmrec.cli.train import train

    cfg = mind_cfg(tmp_path, "model/item_tower=id", "trainer.max_epochs=1")
    metrics = train(cfg, tmp_path / "out")
    names = ["auc", "mrr", "ndcg@5", "ndcg@10"]
    assert all(0.0 <= metrics[f"test/impression/{name}"] <= 1.0 for name in names)
    recorded = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert 0.0 <= recorded["best/val/impression/auc"] <= 1.0  # the checkpoint monitored the impression AUC
    rows = check_means(tmp_path / "out")  # one row per impression, named by its id in behaviors.tsv
    assert rows["impression_id"].is_unique and {"user_id", "impression/auc"} <= set(rows.columns)
