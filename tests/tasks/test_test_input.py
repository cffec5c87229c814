"""What a model reads at test time (`task.fold_validation`) and the unmasked protocol (`task.mask_history=false`),
against references computed another way on the bundled data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lmrec.model.user_towers import HistoryUserTower
from tests.helpers import built_model, compose_train

LOO = ["task=ranking", "data.split.strategy=temporal_loo", "data.max_users=80"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One processed-data cache for the module: each test prepares the bundled data once, not once per test."""
    return tmp_path_factory.mktemp("cache")


def dense(matrix) -> np.ndarray:
    out = np.zeros(matrix.shape)
    for row in range(matrix.shape[0]):
        out[row, matrix.col[matrix.crow[row] : matrix.crow[row + 1]].numpy()] = 1.0
    return out


def test_set_by_the_split_strategy_and_recorded_resolved(cache, tmp_path):
    for strategy, expected in (("temporal_loo", True), ("random_loo", True), ("temporal", True), ("random", False)):
        cfg = compose_train(["task=ranking", f"data.split.strategy={strategy}"], tmp_path / "o", cache)
        assert OmegaConf.to_container(cfg, resolve=True)["task"]["fold_validation"] is expected
    cfg = compose_train([*LOO, "task.fold_validation=false"], tmp_path / "o", cache)
    assert cfg.task.fold_validation is False


def evaluation_batch(model, datamodule, split: str = "test") -> dict:
    dataset = datamodule.task.eval_dataset(datamodule.splits, split)
    return dataset.__getitems__(list(range(len(dataset))))


@pytest.mark.parametrize("fold", [True, False])
def test_ease_reads_training_and_validation_items_at_test_time(cache, tmp_path, fold):
    cfg = compose_train([*LOO, "model=ease", f"task.fold_validation={fold}"], tmp_path / "o", cache)
    model, datamodule = built_model(cfg)
    model.baseline.fit()
    splits = datamodule.splits
    batch = evaluation_batch(model, datamodule)
    scores = datamodule.task.eval_scores(model, batch)
    x = dense(splits.matrix("train", "val") if fold else splits.matrix("train"))
    reference = x[batch["users"].numpy()] @ model.baseline.weights.double().numpy()
    assert np.allclose(scores.double().numpy(), reference, atol=1e-5)
    # validation always reads the training items alone: validation items are what it predicts
    val = evaluation_batch(model, datamodule, "val")
    expected = dense(splits.matrix("train"))[val["users"].numpy()] @ model.baseline.weights.double().numpy()
    assert np.allclose(datamodule.task.eval_scores(model, val).double().numpy(), expected, atol=1e-5)


def test_the_history_tower_reads_the_mean_of_training_and_validation_items(cache, tmp_path):
    overrides = [*LOO, "model/item_tower=id", "model/user_tower=history"]
    model, datamodule = built_model(compose_train(overrides, tmp_path / "o", cache))
    model.eval()
    batch = evaluation_batch(model, datamodule)
    with torch.inference_mode():
        folded = datamodule.task.eval_scores(model, batch)
        # the reference: a history tower built over train + validation, with the trained projection, scoring its
        # own training users through the ordinary lookup path
        other = HistoryUserTower(datamodule.splits.matrix("train", "val"), model.user_tower.projection.in_features)
        other.projection.load_state_dict(model.user_tower.projection.state_dict())
        model.user_tower, original = other, model.user_tower
        reference = model.score_all_items(batch["users"])
        model.user_tower = original
        unfolded = model.score_all_items(batch["users"])
    assert torch.allclose(folded, reference, atol=1e-5)
    assert not torch.allclose(folded, unfolded, atol=1e-3)  # the validation item changed the users


def test_models_with_a_vector_per_user_score_as_before(cache, tmp_path):
    overrides = [*LOO, "model/item_tower=id", "model/user_tower=id"]
    model, datamodule = built_model(compose_train(overrides, tmp_path / "o", cache))
    model.eval()
    batch = evaluation_batch(model, datamodule)
    assert "history_items" in batch and not model.reads_history
    with torch.inference_mode():
        assert torch.equal(datamodule.task.eval_scores(model, batch), model.score_all_items(batch["users"]))


@pytest.mark.parametrize("mask", [True, False])
def test_ndcg_with_and_without_masking_the_history_equals_a_brute_force_ranking(cache, tmp_path, mask):
    overrides = [*LOO, "model=ease", "task.ties=pessimistic", f"task.mask_history={mask}", "task.ks=[10,50]"]
    model, datamodule = built_model(compose_train(overrides, tmp_path / "o", cache))
    model.baseline.fit()
    task, splits = datamodule.task, datamodule.splits
    batch = evaluation_batch(model, datamodule)
    metrics = task.evaluation_metrics("test")
    task.update_metrics(metrics, model, batch)
    logged = {k: float(v) for k, v in task.compute_metrics(metrics, "test").items()}
    scores = task.eval_scores(model, batch).double().numpy()
    seen = dense(splits.matrix("train", "val"))[batch["users"].numpy()].astype(bool)
    targets = batch["targets"].numpy()
    ndcg = {10: [], 50: []}
    for row in range(len(scores)):
        target = int(np.flatnonzero(targets[row])[0])  # leave-one-out: one test item per user
        others = np.ones(scores.shape[1], dtype=bool)
        others[target] = False
        if mask:
            others &= ~seen[row]
        rank = 1 + int(np.sum(scores[row, others] >= scores[row, target]))  # pessimistic: ties rank first
        for k in ndcg:
            ndcg[k].append(1.0 / np.log2(rank + 1) if rank <= k else 0.0)
    for k, values in ndcg.items():
        assert logged[f"test/ndcg@{k}"] == pytest.approx(np.mean(values), abs=1e-6)
