"""MIND leaderboard metrics against hand-computed values and an independent per-impression reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lmrec.errors import ConfigError
from lmrec.tasks.mind_metrics import ImpressionMetricAccumulator, candidate_ranks, impression_metrics

NAMES = ["impression/auc", "impression/mrr", "impression/ndcg@5", "impression/ndcg@10"]


def flat(impressions: list[tuple[list[float], list[int]]], tiebreak: list[list[float]] | None = None):
    scores = torch.tensor([s for sc, _ in impressions for s in sc], dtype=torch.float32)
    labels = torch.tensor([y for _, ys in impressions for y in ys])
    segments = torch.tensor([i for i, (sc, _) in enumerate(impressions) for _ in sc])
    keys = [k for ks in tiebreak for k in ks] if tiebreak else [0.0] * len(scores)
    return scores, labels, segments, torch.tensor(keys, dtype=torch.float64)


# A: ranks by score are idx1, idx3, idx2, idx0... -> the clicks (idx0, idx2) sit at ranks 5 and 3.
A = ([0.1, 0.9, 0.4, 0.7, 0.3], [1, 0, 1, 0, 0])
# B: 12 candidates, the one click at rank 7.
B = ([12.0 - r for r in range(12)], [1 if r == 6 else 0 for r in range(12)])
# Worked by hand (see the comments): AUC counts (click, non-click) pairs with the click ranked first.
EXPECTED = {
    # A: the click at rank 3 is ahead of 1 of the 3 non-clicks, the one at rank 5 of none: 1 of 6 pairs.
    "A": [1 / 6, (1 / 3 + 1 / 5) / 2, (1 / math.log2(4) + 1 / math.log2(6)) / (1 + 1 / math.log2(3))],
    # B: 6 non-clicks ahead of the click, 5 behind: 5/11; MRR 1/7; nDCG@5 = 0; nDCG@10 = (1/log2 8) / 1 = 1/3.
    "B": [5 / 11, 1 / 7, 0.0, 1 / 3],
}


def test_hand_computed_impressions() -> None:
    values = impression_metrics(*flat([A, B]), ties="random")
    auc_a, mrr_a, ndcg_a = EXPECTED["A"]
    assert values["impression/auc"].tolist() == pytest.approx([auc_a, EXPECTED["B"][0]], abs=1e-12)
    assert values["impression/mrr"].tolist() == pytest.approx([mrr_a, EXPECTED["B"][1]], abs=1e-12)
    assert values["impression/ndcg@5"].tolist() == pytest.approx([ndcg_a, 0.0], abs=1e-12)
    assert values["impression/ndcg@10"].tolist() == pytest.approx([ndcg_a, 1 / 3], abs=1e-12)
    assert candidate_ranks(*flat([A]), ties="random").tolist() == [5, 1, 3, 2, 4]


def test_every_click_counts_in_mrr_and_all_clicked_ndcg_is_one() -> None:
    # Two clicks at ranks 1 and 2 of three: MRR (1 + 1/2) / 2 = 0.75 (the official script's mean over clicks).
    values = impression_metrics(*flat([([3.0, 2.0, 1.0], [1, 1, 0])]), ties="random")
    assert values["impression/mrr"].item() == pytest.approx(0.75)
    assert values["impression/auc"].item() == 1.0 and values["impression/ndcg@5"].item() == pytest.approx(1.0)


def test_ties_pessimistic_and_random() -> None:
    tied = ([0.5, 0.5, 0.5], [0, 1, 0])
    pessimistic = impression_metrics(*flat([tied]), ties="pessimistic")
    # The click ranks last of the three tied candidates: AUC 0, MRR 1/3, nDCG 1/log2(4) = 0.5.
    assert [pessimistic[n].item() for n in NAMES] == pytest.approx([0.0, 1 / 3, 0.5, 0.5])
    # Random keys: the lowest key ranks first among ties (0.1 -> idx2, 0.2 -> idx1, 0.3 -> idx0): the click is 2nd.
    rand = impression_metrics(*flat([tied], [[0.3, 0.2, 0.1]]), ties="random")
    assert [rand[n].item() for n in NAMES] == pytest.approx([0.5, 0.5, 1 / math.log2(3), 1 / math.log2(3)])
    # A tie between non-clicks changes nothing; only click-vs-non-click ties do.
    partly = impression_metrics(*flat([([0.9, 0.2, 0.2], [1, 0, 0])]), ties="pessimistic")
    assert partly["impression/auc"].item() == 1.0


def test_constant_scores_are_chance_level_under_random_ties() -> None:
    rng = np.random.default_rng(0)
    impressions, keys = [], []
    for _ in range(3000):
        labels = [0] * 10
        labels[0] = labels[3] = 1
        impressions.append(([1.0] * 10, labels))
        keys.append(rng.random(10).tolist())
    metric = ImpressionMetricAccumulator(ties="random")
    metric.update(*flat(impressions, keys))
    assert metric.compute()["impression/auc"].item() == pytest.approx(0.5, abs=0.01)
    metric = ImpressionMetricAccumulator(ties="pessimistic")
    metric.update(*flat(impressions, keys))
    assert metric.compute()["impression/auc"].item() == 0.0


def reference(scores: list[float], labels: list[int], keys: list[float]) -> list[float]:
    """The official definitions one impression at a time in plain Python: ranks from (-score, key), 1/rank
    scores, pairwise AUC, MRR over every click, DCG with gains 2^y - 1 and log2(rank + 1) discounts."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], keys[i]))
    rank = {i: r + 1 for r, i in enumerate(order)}
    pos = [i for i in range(len(labels)) if labels[i] == 1]
    neg = [i for i in range(len(labels)) if labels[i] == 0]
    auc = sum(rank[p] < rank[n] for p in pos for n in neg) / (len(pos) * len(neg))
    mrr = sum(1 / rank[p] for p in pos) / len(pos)

    def ndcg(k: int) -> float:
        dcg = sum((2 ** labels[i] - 1) / math.log2(r + 2) for r, i in enumerate(order[:k]))
        best = sorted(labels, reverse=True)[:k]
        return dcg / sum((2**y - 1) / math.log2(r + 2) for r, y in enumerate(best))

    return [auc, mrr, ndcg(5), ndcg(10)]


@pytest.mark.parametrize("ties", ["random", "pessimistic"])
def test_matches_the_reference_on_random_impressions_with_ties(ties: str) -> None:
    rng = np.random.default_rng(7)
    impressions, keys, expected = [], [], []
    for _ in range(200):
        n = int(rng.integers(2, 30))
        labels = [0] * n
        for i in rng.choice(n, size=int(rng.integers(1, n)), replace=False):
            labels[int(i)] = 1
        scores = rng.integers(0, 4, size=n).astype(float).tolist()  # few values: many ties
        key = rng.random(n).tolist()
        impressions.append((scores, labels))
        keys.append(key)
        expected.append(reference(scores, labels, [labels[i] if ties == "pessimistic" else key[i] for i in range(n)]))
    values = impression_metrics(*flat(impressions, keys), ties=ties)
    got = np.stack([values[name].numpy() for name in NAMES], axis=1)
    np.testing.assert_allclose(got, np.array(expected), rtol=0, atol=1e-12)
    # The accumulator's means over two batches equal the mean over all impressions.
    metric = ImpressionMetricAccumulator(ties=ties)
    metric.update(*flat(impressions[:77], keys[:77]))
    metric.update(*flat(impressions[77:], keys[77:]))
    means = metric.compute()
    assert [means[name].item() for name in NAMES] == pytest.approx(np.mean(expected, axis=0).tolist(), abs=1e-12)


def test_agrees_with_sklearn_roc_auc_on_the_implied_ranks() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    scores, labels, segments, keys = flat(
        [A, B, ([0.5, 0.5, 0.1, 0.5], [0, 1, 0, 1])], [[0] * 5, [0] * 12, [3, 1, 2, 0]]
    )
    ranks = candidate_ranks(scores, labels, segments, keys, ties="random")
    aucs = impression_metrics(scores, labels, segments, keys, ties="random")["impression/auc"]
    for s in range(3):
        inside = segments == s
        official = sklearn_metrics.roc_auc_score(labels[inside].numpy(), 1.0 / ranks[inside].numpy())
        assert aucs[s].item() == pytest.approx(official, abs=1e-12)


def test_bad_inputs() -> None:
    with pytest.raises(ConfigError, match="task.ties"):
        ImpressionMetricAccumulator(ties="optimistic")
    scores, labels, segments, keys = flat([A])
    with pytest.raises(ValueError, match="NaN"):
        impression_metrics(scores * float("nan"), labels, segments, keys, ties="random")
