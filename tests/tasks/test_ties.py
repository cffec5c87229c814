"""Tie policies of the top-K metrics against a plain-Python reference that sorts every user's candidates.

The reference shares only the definition of the random order with the implementation (a hash of seed, user and
item, `hash_keys`); it ranks every candidate with Python's sort, so the boundary detection and the partial
re-ranking of ambiguous rows are checked, not reused.
"""

from __future__ import annotations

import math

import pytest
import torch

from lmrec.tasks import ties as ties_module
from lmrec.tasks.metrics import RankingMetricAccumulator, ranking_metrics
from lmrec.tasks.ties import hash_keys

KS = [1, 3, 5, 10]
TOPK = ("ndcg", "recall", "hr", "mrr", "precision")


def metrics_of_order(order: list[int], pos: set[int], ks: list[int]) -> dict[str, float]:
    """Top-K metrics of one ranked candidate list (excluded items already removed)."""
    out: dict[str, float] = {}
    for k in ks:
        flags = [1 if j in pos else 0 for j in order[:k]]
        if not pos:
            out.update({f"{m}@{k}": math.nan for m in TOPK})
            continue
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(pos), k)))
        first = next((r for r, h in enumerate(flags) if h), None)
        out[f"ndcg@{k}"] = sum(h / math.log2(r + 2) for r, h in enumerate(flags)) / idcg
        out[f"recall@{k}"] = sum(flags) / len(pos)
        out[f"hr@{k}"] = float(sum(flags) > 0)
        out[f"mrr@{k}"] = 0.0 if first is None else 1 / (first + 1)
        out[f"precision@{k}"] = sum(flags) / k
    return out


def reference(scores, targets, exclude, users, policy: str, seed: int, ks: list[int]) -> list[dict[str, float]]:
    out = []
    n = scores.shape[1]
    for row in range(len(scores)):
        s = scores[row].tolist()
        cand = [j for j in range(n) if not exclude[row, j]]
        pos = {j for j in cand if targets[row, j]}
        if policy == "random":
            keys = hash_keys(seed, torch.tensor(int(users[row])), torch.arange(n)).tolist()
        elif policy == "pessimistic":
            keys = [(j in pos) * n + j for j in range(n)]
        else:
            raise AssertionError(policy)
        order = sorted(cand, key=lambda j, s=s, keys=keys: (-s[j], keys[j]))
        out.append(metrics_of_order(order, pos, ks))
    return out


def tied_batch(seed: int, b: int = 12, n: int = 30):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 3, (b, n), generator=g).float() / 2  # three values: ties everywhere
    scores[0] = 0.25  # one constant row
    scores[1, :8] = -math.inf  # genuine -inf candidates, tied with the excluded items' -inf
    targets = torch.rand(b, n, generator=g) < 0.3
    exclude = torch.rand(b, n, generator=g) < 0.4
    exclude[2, 3:] = True  # fewer candidates than the largest cut-off
    users = torch.randperm(1000, generator=g)[:b]
    return scores, targets, exclude, users


def assert_close_to(got: dict[str, torch.Tensor], want: list[dict[str, float]]) -> None:
    for name in want[0]:
        for u, w in enumerate(want):
            v = got[name][u].item()
            assert (math.isnan(w[name]) and math.isnan(v)) or v == pytest.approx(w[name], abs=1e-6), (name, u)


@pytest.mark.parametrize("policy", ["random", "pessimistic"])
@pytest.mark.parametrize("seed", range(4))
def test_policies_match_reference_on_tied_scores(policy: str, seed: int) -> None:
    scores, targets, exclude, users = tied_batch(seed)
    got = ranking_metrics(scores, targets, exclude, KS + [40], ties=policy, seed=seed, users=users, auc=False)
    assert_close_to(got, reference(scores, targets, exclude, users, policy, seed, KS + [40]))


def test_first_is_torch_topk_order_as_before() -> None:
    """`first` reproduces the numbers of the implementation before tie policies: hits in torch.topk's order."""
    scores, targets, exclude, users = tied_batch(7)
    got = ranking_metrics(scores, targets, exclude, KS, ties="first", auc=False)
    masked = scores.masked_fill(exclude, -math.inf)
    top = torch.topk(masked, max(KS), dim=1).indices.tolist()
    for row in range(len(scores)):
        pos = {j for j in range(scores.shape[1]) if targets[row, j] and not exclude[row, j]}
        order = [j for j in top[row] if not exclude[row, j]]
        want = metrics_of_order(order, pos, KS)
        for name, w in want.items():
            v = got[name][row].item()
            assert (math.isnan(w) and math.isnan(v)) or v == pytest.approx(w, abs=1e-6), (name, row)


def _chance_ndcg(m: int, n: int, k: int) -> float:
    """E[NDCG@k] for m targets among n candidates in uniformly random order: each rank holds a target w.p. m/n."""
    dcg = sum(m / n / math.log2(r + 2) for r in range(min(k, n)))
    return dcg / sum(1 / math.log2(r + 2) for r in range(min(m, k)))


def test_constant_model_gets_chance_level_under_random_and_zero_under_pessimistic() -> None:
    g = torch.Generator().manual_seed(0)
    b, n, k = 4000, 40, 10
    scores = torch.zeros(b, n)
    m = torch.randint(1, 6, (b,), generator=g)
    # The targets are the items torch.topk happens to put first among equal scores (low ids, or on some builds
    # high ones): the policy "first" credits them all.
    topk_rank = torch.full((n,), n)
    topk_rank[torch.topk(torch.zeros(b, n), k, dim=1).indices[0]] = torch.arange(k)
    targets = topk_rank.unsqueeze(0) < m.unsqueeze(1)
    users = torch.arange(b)
    random = ranking_metrics(scores, targets, None, [k], ties="random", seed=3, users=users, auc=False)
    values = random[f"ndcg@{k}"].double()
    expected = sum(_chance_ndcg(int(mi), n, k) for mi in m) / b
    stderr = float(values.std()) / math.sqrt(b)
    assert abs(float(values.mean()) - expected) < 4 * stderr
    assert float(random[f"recall@{k}"].mean()) == pytest.approx(k / n, abs=4 * stderr)  # E[recall@k] = k / n
    pessimistic = ranking_metrics(scores, targets, None, [k], ties="pessimistic", users=users, auc=False)
    assert float(pessimistic[f"ndcg@{k}"].max()) == 0.0  # every target after all 35+ tied non-targets
    first = ranking_metrics(scores, targets, None, [k], ties="first", auc=False)
    assert float(first[f"ndcg@{k}"].mean()) > 0.99  # the inflation the policies exist to remove


def test_random_is_identical_across_runs_and_batchings_and_depends_on_the_seed() -> None:
    scores, targets, exclude, users = tied_batch(11, b=20)
    one = ranking_metrics(scores, targets, exclude, KS, ties="random", seed=5, users=users)
    again = ranking_metrics(scores.clone(), targets, exclude, KS, ties="random", seed=5, users=users)
    halves = [
        ranking_metrics(scores[s], targets[s], exclude[s], KS, ties="random", seed=5, users=users[s])
        for s in (slice(0, 7), slice(7, 20))
    ]
    other = ranking_metrics(scores, targets, exclude, KS, ties="random", seed=6, users=users)
    for name in one:
        torch.testing.assert_close(one[name], again[name], rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(one[name], torch.cat([h[name] for h in halves]), rtol=0, atol=0, equal_nan=True)
    assert any(not torch.equal(one[name].nan_to_num(), other[name].nan_to_num()) for name in one)


def test_no_tie_rows_are_never_re_ranked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The common case pays no re-ranking: continuous scores take the plain top-k path."""

    def fail(*args, **kwargs):
        raise AssertionError("resolve_topk called without ties")

    monkeypatch.setattr(ties_module, "resolve_topk", fail)
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(64, 500, generator=g)
    targets = torch.rand(64, 500, generator=g) < 0.05
    for policy in ("random", "pessimistic"):
        got = ranking_metrics(scores, targets, None, [5, 20], ties=policy, auc=False)
        first = ranking_metrics(scores, targets, None, [5, 20], ties="first", auc=False)
        for name in got:
            torch.testing.assert_close(got[name], first[name], rtol=0, atol=0, equal_nan=True)


def test_ties_among_non_targets_only_are_not_ambiguous() -> None:
    vals = torch.tensor([[3.0, 2.0, 2.0, 1.0], [3.0, 2.0, 2.0, 1.0], [3.0, 2.0, 1.0, 1.0]])
    hits = torch.tensor([[True, False, False], [False, True, False], [False, False, True]])
    # row 0: the tie (2, 2) holds two misses; row 1: a hit ties a miss; row 2: tie across the cut-off k=3.
    assert ties_module.ambiguous_rows(vals, hits, 3).tolist() == [False, True, True]


def test_accumulator_and_invalid_policy() -> None:
    scores, targets, exclude, users = tied_batch(2)
    acc = RankingMetricAccumulator(KS, ties="pessimistic")
    acc.update(scores, targets, exclude, users)
    want = reference(scores, targets, exclude, users, "pessimistic", 0, KS)
    valid = [w["ndcg@5"] for w in want if not math.isnan(w["ndcg@5"])]
    assert acc.compute()["ndcg@5"].item() == pytest.approx(sum(valid) / len(valid), abs=1e-6)
    with pytest.raises(ValueError, match="task.ties='lowest'"):
        ranking_metrics(scores, targets, exclude, KS, ties="lowest")


#: The last commit before tie policies: `first` must give exactly its numbers.
BEFORE_TIES = "b33ce86"


def test_first_reproduces_the_implementation_before_tie_policies() -> None:
    import subprocess
    import types
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    show = ["git", "-C", str(root), "show", f"{BEFORE_TIES}:src/lmrec/tasks/metrics.py"]
    src = subprocess.run(show, capture_output=True, text=True, check=False).stdout
    if not src:
        pytest.skip(f"commit {BEFORE_TIES} is not in this checkout")
    old = types.ModuleType("lmrec_metrics_before_ties")
    exec(compile(src, f"{BEFORE_TIES}:metrics.py", "exec"), old.__dict__)
    for seed in range(3):
        scores, targets, exclude, users = tied_batch(seed)
        want = old.ranking_metrics(scores, targets, exclude, KS)
        got = ranking_metrics(scores, targets, exclude, KS, ties="first", users=users)
        assert list(got) == list(want)
        for name in want:
            torch.testing.assert_close(got[name], want[name], rtol=0, atol=0, equal_nan=True)


def test_hash_keys_are_the_same_on_the_numpy_and_the_device_generic_path() -> None:
    users = torch.tensor([0, 1, 7, 123_456]).unsqueeze(1)
    items = torch.arange(50).unsqueeze(0)
    for seed in (0, 42, -3):
        keys = hash_keys(seed, users, items)
        torch.testing.assert_close(keys, ties_module._torch_hash_keys(seed, users, items), rtol=0, atol=0)
        assert int(keys.min()) >= 0 and int(keys.max()) < 2**62
        assert len(set(keys.flatten().tolist())) == keys.numel()  # no collisions at this size
    # The per-user orders are unrelated to the item ids and to each other.
    order = torch.argsort(hash_keys(0, torch.arange(200).unsqueeze(1), items), dim=1).double()
    assert abs(float(torch.corrcoef(torch.stack([order[:, 0], order[:, 1]]))[0, 1])) < 0.25
    assert abs(float(order.mean(dim=0)[0]) - 24.5) < 4
