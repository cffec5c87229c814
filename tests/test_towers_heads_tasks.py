from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from lmrec.encoders.text_sources import FrozenTextTable
from lmrec.heads import DotHead, MLPHead
from lmrec.sparse import CSRMatrix
from lmrec.tasks import RankingTask, RatingTask
from lmrec.towers import HistoryUserTower, HybridItemTower, IdItemTower, IdUserTower, TextItemTower


def test_dot_head_matches_the_formula_and_score_all():
    torch.manual_seed(0)
    head = DotHead(num_users=5, num_items=7)
    for p in head.parameters():
        torch.nn.init.normal_(p)
    u, items = torch.randn(3, 4), torch.randn(7, 4)
    users, idx = torch.tensor([0, 2, 4]), torch.tensor([1, 6, 3])
    expected = (
        (u * items[idx]).sum(1) + head.user_bias.weight[users, 0] + head.item_bias.weight[idx, 0] + head.global_bias
    )
    assert torch.allclose(head(u, items[idx], users, idx), expected)
    full = head.score_all(u, items, users)
    assert torch.allclose(full[torch.arange(3), idx], expected, atol=1e-6)


def test_mlp_head_score_all_equals_pairwise_forward():
    torch.manual_seed(0)
    head = MLPHead(dim=4, hidden=[8, 5], dropout=0.0).eval()
    u, items = torch.randn(3, 4), torch.randn(10, 4)
    users = torch.arange(3)
    full = head.score_all(u, items, users, chunk=4)
    for b in range(3):
        pair = head(u[b].expand(10, 4), items, users[b].expand(10), torch.arange(10))
        assert torch.allclose(full[b], pair, atol=1e-5)


def test_history_tower_is_projected_mean_of_training_items():
    history = CSRMatrix.from_pairs(torch.tensor([0, 0, 2]), torch.tensor([1, 3, 2]), (3, 4))
    tower = HistoryUserTower(history, dim=2)
    items = torch.randn(4, 2)

    def pooled(users: torch.Tensor) -> torch.Tensor:
        batch_row, history_items, weights = tower.history(users)
        return tower(users, items[history_items], batch_row, weights)

    expected = torch.stack([(items[1] + items[3]) / 2, torch.zeros(2), items[2]])
    assert torch.allclose(pooled(torch.tensor([0, 1, 2])), tower.projection(expected), atol=1e-6)
    batch_row, history_items, _ = tower.history(torch.tensor([2, 0]))
    assert batch_row.tolist() == [0, 1, 1] and history_items.tolist() == [2, 1, 3]
    # gradients reach the item vectors (the history tower trains the item tower too)
    items.requires_grad_(True)
    pooled(torch.tensor([0])).sum().backward()
    assert items.grad[1].abs().sum() > 0 and items.grad[0].abs().sum() == 0


def test_text_and_hybrid_towers():
    text = torch.randn(6, 10)
    tower = TextItemTower(FrozenTextTable(text), dim=3)
    assert torch.allclose(tower(torch.tensor([2])), tower.projection(text[2:3]))
    assert torch.allclose(tower.all_items()[2], tower(torch.tensor([2]))[0])
    with pytest.raises(ValueError, match="project=false"):
        TextItemTower(FrozenTextTable(text), dim=3, project=False)
    hybrid = HybridItemTower(FrozenTextTable(text), num_items=6, dim=3)
    assert torch.allclose(hybrid(torch.tensor([4])), hybrid.text(torch.tensor([4])) + hybrid.ids(torch.tensor([4])))
    assert IdItemTower(6, 3).all_items().shape == (6, 3) and IdUserTower(2, 3)(torch.tensor([1])).shape == (1, 3)


class _FixedScorer:
    def __init__(self, table: torch.Tensor) -> None:
        self.table = table

    def score_pairs(self, users, items):
        return self.table[users, items]


def test_rating_loss_is_mse_of_sigmoid_against_normalised_rating():
    task = RatingTask(0.5, 5.0)
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


def test_hybrid_concat_mixes_text_and_id_vectors():
    hybrid = HybridItemTower(FrozenTextTable(torch.randn(6, 10)), num_items=6, dim=3, combine="concat")
    items = torch.tensor([1, 4])
    expected = hybrid.mix(torch.cat([hybrid.text(items), hybrid.ids(items)], dim=-1))
    assert torch.allclose(hybrid(items), expected)
    assert torch.allclose(hybrid.all_items()[items], expected)


def test_rating_metrics_against_numpy():
    import numpy as np

    task = RatingTask(0.5, 5.0, positive_threshold=4.0)
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
