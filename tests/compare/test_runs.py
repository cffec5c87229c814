"""Which runs a comparison reads, how they group into configurations by seed, and which may be paired."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lmrec.compare.analysis import Options, compare_runs
from lmrec.compare.runs import check_pairable, find_runs, group_configurations, pick
from lmrec.errors import ConfigError, MissingInputError, RunFolderError


def fake_run(folder: Path, overrides: list[str], seed: int, values: dict[str, list[float]], data_key: str = "k1",
             ties: str = "random", task_class: str = "ranking.RankingTask") -> Path:  # fmt: skip
    """A finished run folder as lmrec-train leaves it, with the per-user values given."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, f"seed={seed}", "logger=csv"]))
    task = {"_target_": f"lmrec.tasks.{task_class}", "ties": ties, "monitor": "val/ndcg@10"}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "task": task, "data": {"source": {}}}))
    table = pd.DataFrame({"user_id": np.arange(len(next(iter(values.values())))) + 100, **values})
    (folder / "per_user").mkdir()
    table.to_parquet(folder / "per_user" / "test.parquet")
    metrics = {f"test/{name}": float(np.nanmean(v)) for name, v in values.items()}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    info = {"data_key": f"{data_key}-{seed}", "monitor": "val/ndcg@10", "params": {"total": 10, "trainable": 5},
            "train_seconds": 2.0, "test_seconds": 0.5, "peak_memory_mb": 100.0, "device": "cpu"}  # fmt: skip
    (folder / "run.json").write_text(json.dumps(info))
    return folder


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for job, (tower, seed) in enumerate((t, s) for t in ("id", "hybrid") for s in (1, 2)):
        base = rng.random(50)
        values = base + (0.2 if tower == "hybrid" else 0.0) * rng.random(50)
        fake_run(tmp_path / str(job), [f"model/item_tower={tower}"], seed, {"ndcg@10": list(values)})
    return tmp_path


def test_runs_group_by_everything_but_their_seed(sweep):
    configurations = group_configurations(find_runs([sweep]))
    assert [(c.label, c.seeds) for c in configurations] == [
        ("model/item_tower=id", [1, 2]),
        ("model/item_tower=hybrid", [1, 2]),
    ]
    assert pick(configurations, "item_tower=id").label == "model/item_tower=id"
    with pytest.raises(RunFolderError, match="baseline 'tower' matches 2 of the configurations"):
        pick(configurations, "tower")


def test_the_comparison_pairs_seed_by_seed_on_the_same_users(sweep):
    result = compare_runs(find_runs([sweep]), Options(baseline="item_tower=id", permutations=200, resamples=200))
    (pair,) = result.pairs
    assert (pair["a"], pair["b"], pair["seeds"]) == ("model/item_tower=id", "model/item_tower=hybrid", [1, 2])
    for seed_result in pair["per_seed"]:
        seed = seed_result["seed"]  # jobs: (id, 1), (id, 2), (hybrid, 1), (hybrid, 2)
        a = pd.read_parquet(sweep / {1: "0", 2: "1"}[seed] / "per_user" / "test.parquet")
        b = pd.read_parquet(sweep / {1: "2", 2: "3"}[seed] / "per_user" / "test.parquet")
        cell = seed_result["ndcg@10"]
        assert cell["mean_diff"] == pytest.approx((b["ndcg@10"] - a["ndcg@10"]).mean())
        assert cell["wins"] == int((b["ndcg@10"] > a["ndcg@10"]).sum()) and cell["p_corrected"] >= cell["p"]
    assert result.configurations[0]["cost"]["train_seconds"] == 2.0


def test_runs_evaluated_on_other_data_or_another_protocol_are_not_paired(tmp_path):
    a = fake_run(tmp_path / "a", ["model=ease"], 1, {"ndcg@10": [0.1, 0.2]})
    b = fake_run(tmp_path / "b", ["model=pop"], 1, {"ndcg@10": [0.1, 0.3]}, data_key="other")
    c = fake_run(tmp_path / "c", ["model=als"], 1, {"ndcg@10": [0.1, 0.3]}, ties="first")
    d = fake_run(tmp_path / "d", ["experiment=sasrec"], 1, {"ndcg@10": [0.2, 0.1]}, task_class="next_item.NextItemTask")
    e = fake_run(tmp_path / "e", ["task=rating"], 1, {"ndcg@10": [0.2, 0.1]}, task_class="rating.RatingTask")
    runs = {run.folder.name: run for run in find_runs([a, b, c, d, e])}
    check_pairable(runs["a"], runs["d"])  # a next-item model is evaluated as the ranking task evaluates
    with pytest.raises(RunFolderError, match=r"evaluated differently \(task._target_"):
        check_pairable(runs["a"], runs["e"])
    with pytest.raises(RunFolderError, match="were not evaluated on the same data"):
        check_pairable(runs["a"], runs["b"])
    with pytest.raises(RunFolderError, match=r"evaluated differently \(task.ties: 'random' vs 'first'\)"):
        check_pairable(runs["a"], runs["c"])
    with pytest.raises(RunFolderError, match="not evaluated on the same data"):
        compare_runs(list(runs.values())[:2], Options(baseline="model=ease"))


def test_bad_inputs_are_one_line(tmp_path, sweep):
    with pytest.raises(MissingInputError, match="does not exist"):
        find_runs([tmp_path / "nowhere"])
    with pytest.raises(ConfigError, match="test='anova'"):
        compare_runs(find_runs([sweep]), Options(test="anova"))
    with pytest.raises(ConfigError, match="has no column 'auc'"):
        compare_runs(find_runs([sweep]), Options(metrics=["auc"]))
