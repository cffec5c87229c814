"""Every ranking objective against a value computed by hand (plain Python math) on a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch

from lmrec.data.batches import PopularityNegativeBatches, PositivePairs
from lmrec.data.interactions import InteractionSplits
from lmrec.tasks.ranking import RankingTask
from tests.tasks.test_tasks import _splits


class _TableScorer:
    """Scores from a fixed [users, items] table, with every Scorer method."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table
        self.candidate_calls: list[torch.Tensor] = []

    def score_pairs(self, users, items):
        return self.table[users, items]

    def score_all_items(self, users):
        return self.table[users]

    def score_candidates(self, users, items):
        self.candidate_calls.append(items)
        return self.table[users][:, items]


def _cross_entropy(logits: list[float], target: int) -> float:
    top = max(v for v in logits if v != -math.inf)
    total = sum(math.exp(v - top) for v in logits if v != -math.inf)
    return -(logits[target] - top - math.log(total))


TABLE = torch.tensor([[0.5, -1.0, 2.0, 0.3, 1.2], [1.5, 0.2, -0.7, 0.9, -0.4], [0.0, 0.8, 0.1, -1.1, 0.6]])


def _task_with_log_q(log_q: list[float], **options) -> RankingTask:
    task = RankingTask(**{"loss": "softmax", "temperature": 1.0, **options})
    task.log_q = torch.tensor(log_q)
    return task


def test_full_softmax_is_cross_entropy_over_the_catalogue_with_temperature():
    batch = {"users": torch.tensor([0, 1]), "items": torch.tensor([2, 3])}
    loss = RankingTask(loss="softmax", negatives="full", temperature=0.5).training_loss(_TableScorer(TABLE), batch)
    expected = (
        _cross_entropy([v / 0.5 for v in TABLE[0].tolist()], 2)
        + _cross_entropy([v / 0.5 for v in TABLE[1].tolist()], 3)
    ) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_sampled_softmax_with_popularity_logq_masks_accidental_hits():
    log_q = [math.log(p) for p in (0.1, 0.2, 0.3, 0.25, 0.15)]
    task = _task_with_log_q(log_q, negatives="sampled", sampler="popularity", temperature=2.0)
    # Row 0's second negative is its own positive (item 2): it must not count as a negative.
    batch = {"users": torch.tensor([0, 2]), "items": torch.tensor([2, 1]), "negatives": torch.tensor([[0, 2], [3, 4]])}
    loss = task.training_loss(_TableScorer(TABLE), batch)

    def corrected(user: int, item: int) -> float:
        return TABLE[user, item].item() / 2.0 - log_q[item]

    row0 = _cross_entropy([corrected(0, 2), corrected(0, 0), -math.inf], 0)
    row1 = _cross_entropy([corrected(2, 1), corrected(2, 3), corrected(2, 4)], 0)
    assert loss.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)


def test_sampled_softmax_with_uniform_negatives_needs_no_correction():
    task = _task_with_log_q([0.0, -5.0, -1.0, -2.0, -3.0], negatives="sampled", sampler="uniform", logq=True)
    batch = {"users": torch.tensor([1]), "items": torch.tensor([0]), "negatives": torch.tensor([[3, 4]])}
    loss = task.training_loss(_TableScorer(TABLE), batch)
    assert loss.item() == pytest.approx(_cross_entropy([1.5, 0.9, -0.4], 0), abs=1e-6)


def test_in_batch_softmax_uses_distinct_batch_items_and_keeps_own_positive_out_of_negatives():
    log_q = [math.log(p) for p in (0.3, 0.1, 0.2, 0.25, 0.15)]
    task = _task_with_log_q(log_q, negatives="in_batch")
    # Item 4 is the positive of two rows: one candidate column, never a negative of either row.
    batch = {"users": torch.tensor([0, 1, 2]), "items": torch.tensor([4, 0, 4])}
    scorer = _TableScorer(TABLE)
    loss = task.training_loss(scorer, batch)
    assert scorer.candidate_calls[0].tolist() == [0, 4]
    candidates = [0, 4]
    rows = []
    for user, item in zip([0, 1, 2], [4, 0, 4], strict=True):
        logits = [TABLE[user, c].item() - log_q[c] for c in candidates]
        rows.append(_cross_entropy(logits, candidates.index(item)))
    assert loss.item() == pytest.approx(sum(rows) / 3, abs=1e-6)
    no_logq = RankingTask(loss="softmax", negatives="in_batch", logq=False, temperature=1.0)
    no_logq = no_logq.training_loss(_TableScorer(TABLE), batch)
    plain = [
        _cross_entropy([TABLE[u, c].item() for c in candidates], candidates.index(i))
        for u, i in [(0, 4), (1, 0), (2, 4)]
    ]
    assert no_logq.item() == pytest.approx(sum(plain) / 3, abs=1e-6)


def test_pairwise_losses_leave_out_popularity_hits():
    task = RankingTask(loss="bpr", sampler="popularity")
    batch = {"users": torch.tensor([0]), "items": torch.tensor([2]), "negatives": torch.tensor([[2, 1, 3]])}
    loss = task.training_loss(_TableScorer(TABLE), batch)
    expected = sum(-math.log(1 / (1 + math.exp(-(2.0 - TABLE[0, j].item())))) for j in (1, 3)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_learned_temperature_is_a_trained_parameter_and_a_fixed_one_is_not_saved():
    learned = RankingTask(loss="softmax", negatives="full", temperature=0.2, learn_temperature=True)
    assert [name for name, _ in learned.named_parameters()] == ["log_temperature"]
    loss = learned.training_loss(_TableScorer(TABLE), {"users": torch.tensor([0]), "items": torch.tensor([1])})
    loss.backward()
    assert learned.log_temperature.grad is not None and learned.log_temperature.grad.abs().item() > 0
    fixed = RankingTask(loss="softmax", temperature=0.2)
    assert list(fixed.parameters()) == [] and "log_temperature" not in fixed.state_dict()
    assert fixed.temperature.item() == pytest.approx(0.2)


def test_objective_options_are_checked():
    with pytest.raises(ValueError, match="task.negatives=in_batch needs task.loss=softmax"):
        RankingTask(loss="bpr", negatives="in_batch")
    with pytest.raises(ValueError, match="task.sampler"):
        RankingTask(sampler="zipf")
    with pytest.raises(ValueError, match="task.temperature"):
        RankingTask(loss="softmax", temperature=0)


def test_training_datasets_follow_the_negatives_and_the_popularity_distribution():
    splits: InteractionSplits = _splits()
    in_batch = RankingTask(loss="softmax", negatives="in_batch").train_dataset(splits)
    assert type(in_batch) is PositivePairs and set(in_batch.__getitems__([0, 1])) == {"users", "items"}
    users, items, _ = splits.tensors("train")
    counts = torch.bincount(items, minlength=splits.num_items).double()
    task = RankingTask(loss="bpr", sampler="popularity", popularity_exponent=0.5, num_negatives=3)
    dataset = task.train_dataset(splits)
    assert isinstance(dataset, PopularityNegativeBatches)
    expected = counts.sqrt() / counts.sqrt().sum()
    assert torch.allclose(task.log_q.double().exp(), expected, atol=1e-6)
    torch.manual_seed(0)
    draws = torch.cat([dataset.__getitems__(list(range(len(dataset))))["negatives"].reshape(-1) for _ in range(400)])
    frequency = torch.bincount(draws, minlength=splits.num_items).double() / len(draws)
    assert torch.allclose(frequency, expected, atol=0.02)
    assert frequency[counts == 0].sum() == 0
