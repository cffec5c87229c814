from __future__ import annotations

import pytest
import torch

from lmrec.data.sparse import CSRMatrix
from lmrec.encoders.text_sources import FrozenTextTable
from lmrec.model.heads import DotHead, MLPHead
from lmrec.model.item_towers import HybridItemTower, IdItemTower, TextItemTower
from lmrec.model.user_towers import HistoryUserTower, IdUserTower, UserTower


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
        lookup = tower.lookup(users)
        return tower(users, lookup, items[lookup.items])

    expected = torch.stack([(items[1] + items[3]) / 2, torch.zeros(2), items[2]])
    assert torch.allclose(pooled(torch.tensor([0, 1, 2])), tower.projection(expected), atol=1e-6)
    # repeated users are pooled once and gathered back to their rows
    assert torch.allclose(pooled(torch.tensor([2, 0, 2])), tower.projection(expected[[2, 0, 2]]), atol=1e-6)
    assert tower.lookup(torch.tensor([2, 0, 2])).items.tolist() == [1, 3, 2]  # distinct users 0, 2
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
    assert IdItemTower(6, 3).all_items().shape == (6, 3)


def test_id_user_tower_needs_no_item_vectors():
    tower = IdUserTower(2, 3)
    lookup = tower.lookup(torch.tensor([1, 1]))
    assert isinstance(tower, UserTower) and lookup.items.numel() == 0
    assert torch.equal(tower(torch.tensor([1, 1]), lookup, torch.empty(0, 3)), tower.embedding.weight[[1, 1]])


def test_hybrid_concat_mixes_text_and_id_vectors():
    hybrid = HybridItemTower(FrozenTextTable(torch.randn(6, 10)), num_items=6, dim=3, combine="concat")
    items = torch.tensor([1, 4])
    expected = hybrid.mix(torch.cat([hybrid.text(items), hybrid.ids(items)], dim=-1))
    assert torch.allclose(hybrid(items), expected)
    assert torch.allclose(hybrid.all_items()[items], expected)


def test_history_dropout_drops_entries_in_training_only_and_re_averages_the_rest():
    rows = torch.arange(4).repeat_interleave(50)
    history = CSRMatrix.from_pairs(rows, torch.arange(200) % 100, (4, 100))
    tower = HistoryUserTower(history, dim=3, dropout=0.6)
    users = torch.tensor([0, 1, 2, 3])
    tower.eval()
    assert len(tower.lookup(users).items) == 200
    tower.train()
    torch.manual_seed(0)
    lookup = tower.lookup(users)
    _, _, batch_row, weights = lookup.layout
    assert 40 < len(lookup.items) < 120  # about 40 % of 200 kept
    assert torch.allclose(torch.zeros(4).index_add_(0, batch_row, weights), torch.ones(4))
    single = HistoryUserTower(CSRMatrix.from_pairs(torch.tensor([0]), torch.tensor([7]), (1, 10)), dim=3, dropout=0.9)
    single.train()
    assert all(single.lookup(torch.tensor([0])).items.tolist() == [7] for _ in range(20))  # never left empty
    with pytest.raises(ValueError, match="model.user_tower.dropout"):
        HistoryUserTower(history, dim=3, dropout=1.0)
