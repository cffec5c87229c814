"""per_user/<split>.parquet: each evaluated row's values with the dataset's ids; a column's mean is metrics.json's."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lmrec.cli.train import train
from tests.helpers import compose_train

SLICE = ["data.max_users=40", "trainer.max_epochs=2", "logger=csv"]
ID_TOWER = "model/item_tower=id"
KEYS = ("user_id", "item_id", "impression_id", "user_bucket")


def check_means(run_dir, split: str = "test") -> pd.DataFrame:
    """Each metric column's mean over its non-NaN rows equals the metric the run logged for `split`."""
    rows = pd.read_parquet(run_dir / "per_user" / f"{split}.parquet")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    logged = {k.removeprefix("test/"): v for k, v in metrics.items() if k.startswith("test/")}
    columns = [c for c in rows.columns if c not in KEYS]
    if split == "test":
        expected = {c: logged[c] for c in columns if c != "squared_error"}
        if "squared_error" in columns:  # the rating task: RMSE is the square root of the mean squared error
            assert math.sqrt(rows["squared_error"].mean()) == pytest.approx(logged["rmse"], abs=1e-6)
        assert set(logged) - set(columns) <= {"rmse", "auc"}  # rating AUC ranks all pairs: no per-row value
        for column, value in expected.items():
            assert np.nanmean(rows[column]) == pytest.approx(value, abs=1e-6), column
    return rows


@pytest.mark.parametrize(
    "overrides",
    [
        [ID_TOWER],  # rating: one row per rated pair
        [
            ID_TOWER,
            "task=ranking",
            "task.buckets={users:{quantiles:2},items:{cold:true}}",
            "task.sampled_eval=[{negatives:50}]",
        ],
        ["task=ranking", "model=ease"],  # a fitted baseline
        ["experiment=sasrec", "trainer.max_epochs=1"],  # next-item
    ],
    ids=["rating", "ranking with buckets and sampled", "ease", "next_item"],
)
def test_each_columns_mean_is_the_logged_metric(overrides, tmp_path, bundled_data):
    cfg = compose_train([*SLICE, *overrides], tmp_path / "out", tmp_path / "cache")
    train(cfg, tmp_path / "out")
    rows = check_means(tmp_path / "out")
    ratings = pd.read_csv(bundled_data / "ratings.csv")
    assert set(rows["user_id"]) <= set(ratings["userId"])  # the dataset's ids, never internal indices
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["per_user"] == {"val": "per_user/val.parquet", "test": "per_user/test.parquet"}
    val = pd.read_parquet(tmp_path / "out" / "per_user" / "val.parquet")
    monitor = str(cfg.task.monitor).removeprefix("val/")
    best = json.loads((tmp_path / "out" / "metrics.json").read_text())[f"best/{cfg.task.monitor}"]
    column = "squared_error" if monitor == "rmse" else monitor
    value = math.sqrt(val[column].mean()) if monitor == "rmse" else np.nanmean(val[column])
    assert value == pytest.approx(best, abs=1e-6)  # the validation rows are the tested (best) weights'
    if "task.buckets={users:{quantiles:2},items:{cold:true}}" in overrides:
        assert set(rows["user_bucket"]) == {"users_q1", "users_q2"}
        assert rows.loc[rows["user_bucket"] == "users_q1", "users_q2/ndcg@10"].isna().all()
        assert {"sampled50/ndcg@10", "cold/ndcg@10", "warm/ndcg@10"} <= set(rows.columns)


def test_per_user_false_writes_means_only(tmp_path):
    cfg = compose_train([*SLICE, ID_TOWER, "task=ranking", "per_user=false"], tmp_path / "out", tmp_path / "cache")
    train(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "per_user").exists()
    assert json.loads((tmp_path / "out" / "run.json").read_text())["per_user"] is None


def test_a_fitted_model_is_validated_once(tmp_path, caplog):
    # Its one validation pass is of the weights tested: lmrec-train keeps that pass's rows instead of a second pass.
    cfg = compose_train([*SLICE, "task=ranking", "model=ease"], tmp_path / "out", tmp_path / "cache")
    with caplog.at_level("INFO", logger="lmrec.cli.train"):
        train(cfg, tmp_path / "out")
    messages = [record.getMessage() for record in caplog.records]
    assert "testing" in messages and not any("validating the tested weights" in m for m in messages)
    val = pd.read_parquet(tmp_path / "out" / "per_user" / "val.parquet")
    best = json.loads((tmp_path / "out" / "metrics.json").read_text())["best/val/ndcg@10"]
    assert np.nanmean(val["ndcg@10"]) == pytest.approx(best, abs=1e-6)
