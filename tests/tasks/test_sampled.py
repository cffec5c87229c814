"""Sampled ranking: the negatives (never a positive, reproducible, distributed as specified) and the metrics against
a reference that ranks each user's pooled candidate list with Python's sort."""

from __future__ import annotations

import math

import pytest
import torch

from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError, DataError
from lmrec.tasks.sampled import SampledNegatives, parse_sampled_eval, sampled_metrics
from lmrec.tasks.ties import hash_keys
from tests.tasks.test_ties import metrics_of_order

KS = (1, 5, 10)


def _positives(num_users: int, num_items: int, seed: int) -> CSRMatrix:
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(num_users, num_items, generator=g) < 0.3
    dense[0, :-2] = True  # a user with only two items left to draw
    rows, cols = dense.nonzero(as_tuple=True)
    return CSRMatrix.from_pairs(rows, cols, (num_users, num_items))


def test_negatives_are_never_positives_and_identical_across_runs() -> None:
    pos = _positives(30, 25, 0)
    slots = torch.randint(0, 4, (30,), generator=torch.Generator().manual_seed(1))
    weights = torch.randint(0, 5, (25,), generator=torch.Generator().manual_seed(2))
    weights[-2:] = 1  # user 0's two remaining items can be drawn
    for w in (torch.ones(25, dtype=torch.long), weights):
        sampler = SampledNegatives("sampled7", 7, w, pos, slots, seed=3)
        users = torch.arange(30)
        batch = sampler(users)
        rows, items = batch["sampled7/rows"], batch["sampled7/items"]
        assert torch.equal(torch.bincount(rows, minlength=30), slots * 7)  # N per evaluated positive
        dense = torch.zeros(30, 25, dtype=torch.bool)
        dense[torch.repeat_interleave(torch.arange(30), pos.row_lengths()), pos.col] = True
        assert not dense[users[rows], items].any()  # never a positive of the user
        assert bool((w[items] > 0).all())  # never an item without weight (popularity: no training interaction)
        again = SampledNegatives("sampled7", 7, w, pos, slots, seed=3)
        # Same seed: the same negatives, whatever the batching (users asked for in another order and split).
        perm = torch.tensor([5, 0, 29, 3])
        part = again(perm)
        per_user = {int(u): items[rows == int(u)].tolist() for u in perm}
        for i, u in enumerate(perm.tolist()):
            assert part["sampled7/items"][part["sampled7/rows"] == i].tolist() == per_user[u]
        other = SampledNegatives("sampled7", 7, w, pos, slots, seed=4)(users)["sampled7/items"]
        assert not torch.equal(other, items)


def test_draws_follow_the_weights_over_the_allowed_items() -> None:
    n = 12
    pos = CSRMatrix.from_pairs(torch.tensor([0, 0, 0]), torch.tensor([2, 5, 6]), (1, n))
    weights = torch.tensor([1, 2, 3, 0, 4, 5, 6, 1, 2, 3, 0, 1])
    sampler = SampledNegatives("s", 20000, weights, pos, torch.tensor([1]), seed=0)
    items = sampler(torch.tensor([0]))["s/items"]
    freq = torch.bincount(items, minlength=n).double() / len(items)
    allowed = weights.clone()
    allowed[[2, 5, 6]] = 0
    expected = allowed.double() / allowed.sum()
    assert float((freq - expected).abs().max()) < 0.01
    assert freq[[2, 3, 5, 6, 10]].sum() == 0


def test_user_without_candidates_is_an_error() -> None:
    pos = CSRMatrix.from_pairs(torch.tensor([0, 0]), torch.tensor([0, 1]), (1, 3))
    with pytest.raises(DataError, match="user index 0 has no item left"):
        SampledNegatives("sampled_pop5", 5, torch.tensor([1, 1, 0]), pos, torch.tensor([1]), seed=0)


def _reference(scores, valid, rows, items, users, policy, seed):
    out = []
    for u in range(len(scores)):
        cands = [(int(j), True) for j in valid[u].nonzero().flatten()]
        cands += [(int(j), False) for j in items[rows == u]]
        pos_ids = {i for i, (_, t) in enumerate(cands) if t}
        keys = (
            hash_keys(seed, torch.tensor(int(users[u])), torch.tensor([j for j, _ in cands])).tolist() if cands else []
        )

        def key(i, cands=cands, keys=keys, u=u):
            j, t = cands[i]
            tie = keys[i] if policy == "random" else (t * scores.shape[1] + j if policy == "pessimistic" else j)
            return (-float(scores[u, j]), tie)

        order = sorted(range(len(cands)), key=key)
        out.append(metrics_of_order(order, pos_ids, list(KS)))
    return out


@pytest.mark.parametrize("policy", ["random", "pessimistic", "first"])
@pytest.mark.parametrize("tied", [False, True])
def test_metrics_match_reference(policy: str, tied: bool) -> None:
    g = torch.Generator().manual_seed(5)
    b, n = 9, 40
    scores = torch.randint(0, 4, (b, n), generator=g).float() if tied else torch.randn(b, n, generator=g)
    targets = torch.rand(b, n, generator=g) < 0.15
    exclude = (torch.rand(b, n, generator=g) < 0.3) & ~targets
    exclude[0, :3] = True
    targets[0, :3] = True  # excluded targets are not evaluated
    targets[1] = False  # no target: NaN
    users = torch.arange(100, 100 + b)
    pos = CSRMatrix.from_pairs(*(targets | exclude).nonzero(as_tuple=True), (b, n))
    valid = targets & ~exclude
    slots = valid.sum(dim=1)
    batch = SampledNegatives("sampled3", 3, torch.ones(n, dtype=torch.long), pos, slots, seed=1)(torch.arange(b))
    rows, items = batch["sampled3/rows"], batch["sampled3/items"]
    got = sampled_metrics(scores, targets, exclude, rows, items, KS, ties=policy, seed=2, users=users, label="sampled3")
    want = _reference(scores, valid, rows, items, users, policy, 2)
    assert set(got) == {f"sampled3/{m}@{k}" for m in ("ndcg", "recall", "hr", "mrr", "precision") for k in KS}
    for name, values in got.items():
        for u in range(b):
            w, v = want[u][name.split("/")[1]], values[u].item()
            assert (math.isnan(w) and math.isnan(v)) or v == pytest.approx(w, abs=1e-9), (name, u)


def test_parse_sampled_eval() -> None:
    assert parse_sampled_eval(None) == []
    specs = [{"negatives": 100}, {"negatives": 50, "sampler": "popularity"}]
    assert parse_sampled_eval(specs) == [("sampled100", 100, "uniform"), ("sampled_pop50", 50, "popularity")]
    for bad, match in [
        ({"negatives": 100}, "expected null or a list"),
        ([{"negatives": 0}], r"sampled_eval\[0\].negatives=0"),
        ([{"negatives": 10, "sampler": "zipf"}], "sampler='zipf'"),
        ([{"n": 10}], r"sampled_eval\[0\]="),
        ([{"negatives": 10}, {"negatives": 10, "sampler": "uniform"}], "listed twice"),
    ]:
        with pytest.raises(ConfigError, match=match):
            parse_sampled_eval(bad)
