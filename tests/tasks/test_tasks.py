"""The rating and ranking tasks: losses against a formula, metrics against numpy, and the batches each builds."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from lmrec.data.batches import InteractionBatches, NegativeSampledBatches, RankingEvalBatches
from lmrec.data.interactions import InteractionSplits
from lmrec.data.processed import ProcessedData
from lmrec.data.sources.base import RatingScale
from lmrec.tasks.ranking import RankingTask
from lmrec.tasks.rating import RatingTask

SCALE = RatingScale(0.5, 5.0)


class _FixedScorer:
    def __init__(self, table: torch.Tensor) -> None:
        self.table = table

    def score_pairs(self, users, items):
        return self.table[users, items]


def test_rating_loss_is_mse_of_sigmoid_against_normalised_rating():
    task = RatingTask(SCALE)
    table = torch.randn(2, 3)
    batch = {"users": torch.tensor([0, 1]), "items": torch.tensor([2, 0]), "ratings": torch.tensor([5.0, 0.5])}
    loss = task.training_loss(_FixedScorer(table), batch)
    expected = ((torch.sigmoid(table[0, 2]) - 1.0) ** 2 + (torch.sigmoid(table[1, 0]) - 0.0) ** 2) / 2
    assert torch.allclose(loss, expected)
    assert torch.allclose(task.predict(torch.tensor([0.0])), torch.tensor([2.75]))


def test_ranking_losses():
    table = torch.randn(2, 5)
    batch = {"users": torch.tensor([0, 1]), "items": torch.tensor([1, 2]), "negatives": torch.tensor([[3, 4], [0, 4]])}
    pos = torch.stack([table[0, 1], table[1, 2]])
    neg = torch.stack([table[0, [3, 4]], table[1, [0, 4]]])
    bpr = RankingTask("bpr").training_loss(_FixedScorer(table), batch)
    assert torch.allclose(bpr, -F.logsigmoid(pos.unsqueeze(1) - neg).mean())
    bce = RankingTask("bce").training_loss(_FixedScorer(table), batch)
    expected = F.binary_cross_entropy_with_logits(pos, torch.ones(2)) + F.binary_cross_entropy_with_logits(
        neg, torch.zeros(2, 2)
    )
    assert torch.allclose(bce, expected)
    with pytest.raises(ValueError, match="task.loss"):
        RankingTask("hinge")
    with pytest.raises(ValueError, match="task.num_negatives=0"):
        RankingTask(num_negatives=0)
    with pytest.raises(ValueError, match="task.ks"):
        RankingTask(ks=[0, 5])


def test_rating_metrics_against_numpy():
    import numpy as np

    task = RatingTask(SCALE, positive_threshold=4.0)
    logits = torch.tensor([[2.0, -1.0, 0.0, 1.0]])
    batch = {
        "users": torch.zeros(4, dtype=torch.long),
        "items": torch.arange(4),
        "ratings": torch.tensor([5.0, 1.0, 4.0, 3.5]),
    }
    metrics = task.make_metrics()
    task.update_metrics(metrics, _FixedScorer(logits), batch)
    predicted = 0.5 + 4.5 / (1 + np.exp(-logits[0].numpy().astype(np.float64)))
    truth = batch["ratings"].numpy()
    assert float(metrics["rmse"].compute()) == pytest.approx(np.sqrt(np.mean((predicted - truth) ** 2)), rel=1e-5)
    assert float(metrics["mae"].compute()) == pytest.approx(np.mean(np.abs(predicted - truth)), rel=1e-5)
    # positives (rating >= 4): 5.0 (logit 2) and exactly 4.0 (logit 0); negatives have logits -1 and 1.
    # Pairs won: 2 by the first positive, 1 by the second -> AUC 3/4 (with '>' instead of '>=' it would be 1).
    assert float(metrics["auc"].compute()) == pytest.approx((2 + 1) / 4)


def _splits() -> InteractionSplits:
    """Users 0-1, items 0-3; each split a few (user, item, rating) rows."""
    frame = pd.DataFrame(
        {
            "user_idx": [0, 0, 1, 1, 0, 1],
            "item_idx": [0, 1, 2, 3, 2, 0],
            "rating": [4.0, 3.0, 5.0, 2.0, 1.0, 4.5],
            "timestamp": range(6),
            "split": [0, 0, 0, 1, 2, 2],
        }
    )
    return InteractionSplits(
        ProcessedData(frame, pd.DataFrame({"user_id": [10, 11]}), pd.DataFrame({"item_id": range(4)}))
    )


def test_each_task_builds_its_own_batches_from_the_splits():
    splits = _splits()
    rating = RatingTask(SCALE)
    train = rating.train_dataset(splits)
    assert isinstance(train, InteractionBatches) and train.__getitems__([0, 1, 2])["items"].tolist() == [0, 1, 2]
    assert rating.eval_dataset(splits, "test").__getitems__([0, 1])["ratings"].tolist() == [1.0, 4.5]
    ranking = RankingTask(loss="bpr", num_negatives=3)
    sampled = ranking.train_dataset(splits)
    assert isinstance(sampled, NegativeSampledBatches) and sampled.num_negatives == 3
    test = ranking.eval_dataset(splits, "test")
    assert isinstance(test, RankingEvalBatches)
    batch = test.__getitems__([0, 1])
    # test targets are the test items; training and validation items are excluded
    assert batch["targets"].tolist() == [[False, False, True, False], [True, False, False, False]]
    assert batch["exclude"].tolist() == [[True, True, False, False], [False, False, True, True]]
    val = ranking.eval_dataset(splits, "val").__getitems__([0])
    assert val["users"].tolist() == [1] and val["exclude"].tolist() == [[False, False, True, False]]
