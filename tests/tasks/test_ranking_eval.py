"""The ranking task's evaluation options end to end: eval batches -> update_metrics -> logged names and values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lmrec.data.interactions import InteractionSplits
from lmrec.data.processed import ProcessedData
from lmrec.errors import ConfigError
from lmrec.tasks.buckets import BucketSpec, BucketValues
from lmrec.tasks.metrics import ranking_metrics
from lmrec.tasks.ranking import RankingTask

NUM_USERS, NUM_ITEMS = 40, 30


def _splits(seed: int = 0) -> InteractionSplits:
    """Random interactions; items 25-29 never in training (cold), user activity varies widely."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(NUM_USERS):
        items = rng.choice(NUM_ITEMS, size=3 + u % 12, replace=False)
        for i in items:
            split = int(rng.choice(3, p=[0.6, 0.2, 0.2]))
            if i >= 25:
                split = 1 + int(rng.integers(2))
            rows.append((u, int(i), split))
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "split"])
    frame["rating"], frame["timestamp"] = 4.0, range(len(frame))
    users = pd.DataFrame({"user_id": range(NUM_USERS)})
    return InteractionSplits(ProcessedData(frame, users, pd.DataFrame({"item_id": range(NUM_ITEMS)})))


class _Table:
    def __init__(self, table: torch.Tensor) -> None:
        self.table = table

    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        return self.table[users]


def _evaluate(task: RankingTask, splits: InteractionSplits, split: str, scores: torch.Tensor, batch_size: int = 7):
    metrics = task.make_metrics()  # as EvaluatedModule builds them: without the split
    dataset = task.eval_dataset(splits, split)
    batches = [
        dataset.__getitems__(list(range(i, min(len(dataset), i + batch_size))))
        for i in range(0, len(dataset), batch_size)
    ]
    for batch in batches:
        task.update_metrics(metrics, _Table(scores), batch)
    return metrics["ranking"].compute(), batches


OPTIONS = {
    "ks": [5, 10],
    "sampled_eval": [{"negatives": 4}, {"negatives": 3, "sampler": "popularity"}],
    "buckets": {"users": {"quantiles": 3}, "items": {"cold": True, "head": 0.2}},
    "auc": ["test"],
}


def test_names_per_split_and_auc_only_where_asked() -> None:
    task = RankingTask(**OPTIONS)
    splits = _splits()
    scores = torch.randn(NUM_USERS, NUM_ITEMS, generator=torch.Generator().manual_seed(0))
    val, _ = _evaluate(task, splits, "val", scores)
    test, _ = _evaluate(task, splits, "test", scores)
    assert list(val) == task.metric_names("val") and list(test) == task.metric_names("test")
    assert "auc" not in val and "users_q1/auc" not in val and "auc" in test and "users_q3/auc" in test
    for name in (
        "sampled4/ndcg@10",
        "sampled_pop3/ndcg@10",
        "cold/ndcg@10",
        "warm/recall@5",
        "head/hr@5",
        "tail/mrr@10",
        "users_q1/ndcg@10",
        "users_q3/precision@5",
        "ndcg@10",
    ):
        assert name in test, name
    assert set(task.metric_names()) == set(task.metric_names("test"))
    assert RankingTask().metric_names("val")[-1] == "auc"  # default: both splits


def test_bucket_values_against_direct_computation() -> None:
    task = RankingTask(**OPTIONS, ties="random", seed=9)
    splits = _splits(1)
    scores = torch.randint(0, 5, (NUM_USERS, NUM_ITEMS), generator=torch.Generator().manual_seed(2)).float()
    got, batches = _evaluate(task, splits, "test", scores)
    users = torch.cat([b["users"] for b in batches])
    targets, exclude = torch.cat([b["targets"] for b in batches]), torch.cat([b["exclude"] for b in batches])
    full = ranking_metrics(scores[users], targets, exclude, [5, 10], ties="random", seed=9, users=users)
    train_items = splits.tensors("train")[1]
    cold = torch.bincount(train_items, minlength=NUM_ITEMS) == 0
    assert bool(cold[25:].all())
    restricted = ranking_metrics(scores[users], targets & cold, exclude, [5, 10], ties="random", seed=9, users=users)
    assert got["cold/ndcg@10"].item() == pytest.approx(float(restricted["ndcg@10"].nanmean()), abs=1e-6)
    assert got["ndcg@10"].item() == pytest.approx(float(full["ndcg@10"].nanmean()), abs=1e-6)
    counts = torch.bincount(splits.tensors("train")[0], minlength=NUM_USERS).numpy()
    bounds = np.quantile(counts, [1 / 3, 2 / 3])
    first = torch.from_numpy(counts[users.numpy()] <= bounds[0])
    assert got["users_q1/ndcg@10"].item() == pytest.approx(float(full["ndcg@10"][first].nanmean()), abs=1e-6)
    assert got["users_q1/auc"].item() == pytest.approx(float(full["auc"][first].nanmean()), abs=1e-6)
    again, _ = _evaluate(RankingTask(**OPTIONS, ties="random", seed=9), splits, "test", scores, batch_size=3)
    for name, value in got.items():  # identical across runs and batch sizes
        assert value.item() == pytest.approx(again[name].item(), abs=1e-6) or math.isnan(value.item()), name


def test_sampled_negatives_exclude_every_split() -> None:
    splits = _splits(2)
    task = RankingTask(sampled_eval=[{"negatives": 5}])
    every = splits.matrix("train", "val", "test")
    dataset = task.eval_dataset(splits, "val")
    batch = dataset.__getitems__(list(range(len(dataset))))
    dense = every.dense_rows(batch["users"])
    rows, items = batch["sampled5/rows"], batch["sampled5/items"]
    assert len(items) == 5 * int((batch["targets"] & ~batch["exclude"]).sum())
    assert not dense[rows, items].any()  # not even the user's test items, though this evaluates val


def test_bucket_definitions() -> None:
    spec = BucketSpec({"users": {"edges": [3, 10]}, "items": {"head": 0.25}})
    assert spec.user_buckets() == ["users_0-2", "users_3-9", "users_10+"] and spec.item_buckets() == ["head", "tail"]
    item_counts = torch.tensor([9, 7, 7, 3, 1, 1, 1, 0])
    values = BucketValues(spec, torch.tensor([0, 2, 3, 9, 10, 50]), item_counts)
    assert values.bucket.tolist() == [0, 0, 1, 1, 2, 2]
    # 7 warm items, 25% -> 2 items; the item tied with the second (count 7) joins the head.
    assert values.groups["head"].tolist() == [True, True, True, False, False, False, False, False]
    assert values.groups["tail"].tolist() == [False, False, False, True, True, True, True, False]
    for bad, match in [
        ({"users": {"quantiles": 1}}, "quantiles=1"),
        ({"users": {"edges": [5, 3]}}, "edges=\\[5, 3\\]"),
        ({"items": {"head": 1.5}}, "head=1.5"),
        ({"item": {}}, "unknown keys"),
    ]:
        with pytest.raises(ConfigError, match=match):
            BucketSpec(bad)
    with pytest.raises(ConfigError, match="task.auc"):
        RankingTask(auc=["train"])


def test_accumulator_drops_auc_only_when_no_update_computed_it_on_any_rank() -> None:
    from lmrec.tasks.metrics import RankingMetricAccumulator

    g = torch.Generator().manual_seed(3)
    scores, targets = torch.randn(6, 20, generator=g), torch.rand(6, 20, generator=g) < 0.3
    a, b = RankingMetricAccumulator([5]), RankingMetricAccumulator([5])
    a.update(scores[:3], targets[:3], auc=False)
    b.update(scores[3:], targets[3:], auc=False)
    lean = RankingMetricAccumulator([5])
    lean.update(scores, targets, auc=False)
    assert "auc" not in lean.compute() and "ndcg@5" in lean.compute()
    b.update(scores[3:], targets[3:])
    a.merge_state(b)  # what DDP's sum of states does: one rank computed AUC, so every rank reports it
    assert "auc" in a.compute()
    with pytest.raises(ValueError, match="not metrics of this accumulator"):
        a.update(values={"cold/ndcg@5": torch.zeros(2)})
