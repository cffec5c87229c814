"""Tests for lmrec.tasks.metrics against a brute-force, loop-over-users reference in plain Python.

The reference deliberately shares no code with the vectorised implementation: it sorts Python lists,
uses math.log2 and counts AUC pairs one by one, so a bug in the tensor tricks cannot cancel out.
"""

from __future__ import annotations

import math

import pytest
import torch

from lmrec.tasks.metrics import RankingMetricAccumulator, metric_names, ranking_metrics

KS = [1, 5, 10, 20]
TOL = 1e-6


# --------------------------------------------------------------------------- brute-force reference


def _brute_auc(scores: list[float], pos: list[int], neg: list[int]) -> float:
    if not pos or not neg:
        return math.nan
    wins = 0.0
    for p in pos:
        for q in neg:
            if scores[p] > scores[q]:
                wins += 1.0
            elif scores[p] == scores[q]:
                wins += 0.5
    return wins / (len(pos) * len(neg))


def brute_force(
    scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None, ks: list[int]
) -> list[dict[str, float]]:
    """One dict of metrics per user, computed with plain Python loops."""
    s_all = scores.double().tolist()
    t_all = targets.tolist()
    e_all = exclude.tolist() if exclude is not None else [[False] * len(row) for row in t_all]
    out = []
    for s, t, e in zip(s_all, t_all, e_all, strict=True):
        candidates = [j for j in range(len(s)) if not e[j]]
        pos = [j for j in candidates if t[j]]
        neg = [j for j in candidates if not t[j]]
        ranking = sorted(candidates, key=lambda j, s=s: -s[j])
        res: dict[str, float] = {}
        for k in ks:
            top = ranking[:k]
            hit_flags = [1 if t[j] else 0 for j in top]
            n_hits = sum(hit_flags)
            if not pos:
                for m in ("ndcg", "recall", "hr", "mrr", "precision"):
                    res[f"{m}@{k}"] = math.nan
                continue
            dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hit_flags))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(pos), k)))
            first = next((r for r, h in enumerate(hit_flags) if h), None)
            res[f"ndcg@{k}"] = dcg / idcg
            res[f"recall@{k}"] = n_hits / len(pos)
            res[f"hr@{k}"] = 1.0 if n_hits > 0 else 0.0
            res[f"mrr@{k}"] = 0.0 if first is None else 1.0 / (first + 1)
            res[f"precision@{k}"] = n_hits / k
        res["auc"] = _brute_auc(s, pos, neg) if pos else math.nan
        out.append(res)
    return out


def assert_matches(got: dict[str, torch.Tensor], want: list[dict[str, float]], tol: float = TOL) -> None:
    assert set(got) == set(want[0])
    for name, values in got.items():
        assert values.shape == (len(want),), name
        for u, v in enumerate(values.tolist()):
            w = want[u][name]
            if math.isnan(w):
                assert math.isnan(v), f"{name} user {u}: expected NaN, got {v}"
            else:
                assert v == pytest.approx(w, abs=tol), f"{name} user {u}: {v} != {w}"


# --------------------------------------------------------------------------- fixtures


def make_batch(seed: int = 0, b: int = 7, n: int = 50) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random continuous scores (no ties) and hand-shaped edge cases, one per user row.

    row 0: zero targets                       -> all NaN
    row 1: all but one item excluded, and that one is a target -> top-k fine, AUC NaN (no negatives)
    row 2: targets overlap exclude            -> the overlapping targets must be dropped
    row 3: 30 targets (> max k)               -> recall < 1 even with perfect hits, idcg saturates at k
    row 4: single target, no exclusions
    row 5: all but one excluded, the remaining one a non-target -> zero effective targets, NaN
    row 6: random targets and excludes
    """
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(b, n, generator=g)
    targets = torch.zeros(b, n, dtype=torch.bool)
    exclude = torch.zeros(b, n, dtype=torch.bool)

    def perm() -> torch.Tensor:
        return torch.randperm(n, generator=g)

    # row 0: no targets, a few excludes
    exclude[0, perm()[:5]] = True
    # row 1
    p = perm()
    exclude[1, p[1:]] = True
    targets[1, p[0]] = True
    targets[1, p[1:4]] = True  # excluded targets: exclusion wins
    # row 2
    p = perm()
    targets[2, p[:8]] = True
    exclude[2, p[4:15]] = True  # 4 of the 8 targets are excluded
    # row 3
    p = perm()
    targets[3, p[:30]] = True
    exclude[3, p[30:35]] = True
    # row 4
    targets[4, perm()[0]] = True
    # row 5
    p = perm()
    exclude[5, p[1:]] = True
    targets[5, p[1:6]] = True  # only excluded targets
    # row 6
    targets[6] = torch.rand(n, generator=g) < 0.2
    exclude[6] = (torch.rand(n, generator=g) < 0.3) & ~targets[6]
    return scores, targets, exclude


# --------------------------------------------------------------------------- tests


def test_matches_brute_force_random() -> None:
    scores, targets, exclude = make_batch()
    got = ranking_metrics(scores, targets, exclude, KS)
    want = brute_force(scores, targets, exclude, KS)
    assert_matches(got, want)
    # The edge cases really are what make_batch claims.
    assert all(math.isnan(v) for v in (got[name][0].item() for name in got))
    assert all(math.isnan(v) for v in (got[name][5].item() for name in got))
    assert math.isnan(got["auc"][1].item()) and got["hr@1"][1].item() == 1.0
    assert got["recall@20"][3].item() < 1.0


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force_more_seeds(seed: int) -> None:
    g = torch.Generator().manual_seed(100 + seed)
    b, n = 9, 40
    scores = torch.randn(b, n, generator=g)
    targets = torch.rand(b, n, generator=g) < torch.rand(b, 1, generator=g) * 0.5
    exclude = torch.rand(b, n, generator=g) < 0.3
    ks = [1, 3, 10, 40, 100]  # 100 > n: every item ranked, precision still divides by k
    assert_matches(ranking_metrics(scores, targets, exclude, ks), brute_force(scores, targets, exclude, ks))


def test_no_exclude() -> None:
    scores, targets, _ = make_batch(seed=3)
    got = ranking_metrics(scores, targets, None, KS)
    assert_matches(got, brute_force(scores, targets, None, KS))


def test_metric_names_match_keys() -> None:
    scores, targets, exclude = make_batch()
    names = metric_names(KS)
    assert list(ranking_metrics(scores, targets, exclude, KS)) == names
    assert names[0] == "ndcg@1" and names[-1] == "auc"
    assert len(names) == 5 * len(KS) + 1
    assert metric_names([20, 5, 5, 10, 1]) == names  # order and duplicates of ks do not matter


def test_exclude_wins_over_target() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.1]])
    targets = torch.tensor([[True, True, False]])
    exclude = torch.tensor([[True, False, False]])
    got = ranking_metrics(scores, targets, exclude, [1, 2])
    # Item 0 is gone: the ranking is [1, 2], one target, which is ranked first.
    assert got["recall@1"].item() == 1.0
    assert got["ndcg@1"].item() == 1.0
    assert got["precision@2"].item() == 0.5
    assert got["auc"].item() == 1.0


def test_ndcg_hand_computed() -> None:
    # Six items, scores strictly decreasing so the ranking is items 0, 1, 2, 3, 4, 5.
    scores = torch.tensor([[0.6, 0.5, 0.4, 0.3, 0.2, 0.1]])
    targets = torch.tensor([[False, True, False, True, False, False]])  # targets at ranks 2 and 4
    got = ranking_metrics(scores, targets, None, [3, 5])
    d2 = 1 / math.log2(3)  # 0.630930 (rank 2)
    d3 = 1 / math.log2(4)  # 0.5      (rank 3)
    d4 = 1 / math.log2(5)  # 0.430677 (rank 4)
    # @3: only the rank-2 hit counts.  DCG = 0.630930, IDCG (2 targets, 2 slots) = 1 + 0.630930.
    assert d2 / (1 + d2) == pytest.approx(0.386853, abs=1e-6)
    assert got["ndcg@3"].item() == pytest.approx(0.386853, abs=1e-6)
    # @5: DCG = 0.630930 + 0.430677 = 1.061606, IDCG still 1.630930 (only 2 targets).
    assert (d2 + d4) / (1 + d2) == pytest.approx(0.650921, abs=1e-6)
    assert got["ndcg@5"].item() == pytest.approx(0.650921, abs=1e-6)
    assert got["mrr@3"].item() == pytest.approx(0.5)
    assert got["recall@3"].item() == pytest.approx(0.5)
    assert got["precision@3"].item() == pytest.approx(1 / 3)

    # Excluding the top item (0) moves the targets to ranks 1 and 3:
    # DCG@3 = 1 + 0.5 = 1.5, IDCG@3 = 1.630930, NDCG@3 = 0.919721.
    exclude = torch.tensor([[True, False, False, False, False, False]])
    got = ranking_metrics(scores, targets, exclude, [3])
    assert (1 + d3) / (1 + d2) == pytest.approx(0.919721, abs=1e-6)
    assert got["ndcg@3"].item() == pytest.approx(0.919721, abs=1e-6)
    assert got["mrr@3"].item() == 1.0


def test_auc_hand_computed() -> None:
    # scores [0.9, 0.8, 0.7, 0.1], targets [0, 1, 0, 1]: positives {0.8, 0.1}, negatives {0.9, 0.7}.
    # Pairs: 0.8>0.9 no, 0.8>0.7 yes, 0.1>0.9 no, 0.1>0.7 no  ->  1 win out of 4 pairs = 0.25.
    # Rank-sum check: ascending ranks 0.1->1, 0.7->2, 0.8->3, 0.9->4; positives' rank sum = 3 + 1 = 4;
    # U = 4 - 2*3/2 = 1; AUC = U / (n_pos * n_neg) = 1 / 4 = 0.25.
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.1]])
    targets = torch.tensor([[False, True, False, True]])
    assert ranking_metrics(scores, targets, None, [1])["auc"].item() == pytest.approx(0.25)

    # With ties: scores [0.5, 0.5, 0.5, 0.2], target item 0.  Versus the negatives 0.5, 0.5, 0.2 it
    # scores 1/2 + 1/2 + 1 = 2 out of 3 pairs -> 2/3.  Midranks: the three 0.5s share ranks 2,3,4 -> 3;
    # U = 3 - 1 = 2; AUC = 2 / (1 * 3).
    scores = torch.tensor([[0.5, 0.5, 0.5, 0.2]])
    targets = torch.tensor([[True, False, False, False]])
    assert ranking_metrics(scores, targets, None, [1])["auc"].item() == pytest.approx(2 / 3)

    # An excluded item tied with the target must not count as a tie (it is not a negative).
    exclude = torch.tensor([[False, True, False, False]])
    assert ranking_metrics(scores, targets, exclude, [1])["auc"].item() == pytest.approx(3 / 4)


@pytest.mark.parametrize("seed", range(3))
def test_auc_with_ties_matches_pairwise(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    b, n = 8, 60
    scores = torch.randint(0, 6, (b, n), generator=g).float() / 5  # only 6 distinct values: many ties
    scores[0] = 0.4  # a user whose scores are all equal: AUC must be exactly 0.5
    scores[1, :10] = -math.inf  # genuine -inf scores (tied with each other) are ordinary candidates
    targets = torch.rand(b, n, generator=g) < 0.3
    exclude = torch.rand(b, n, generator=g) < 0.25
    got = ranking_metrics(scores, targets, exclude, [5])["auc"].tolist()
    for u in range(b):
        s = scores[u].double().tolist()
        pos = [j for j in range(n) if targets[u, j] and not exclude[u, j]]
        neg = [j for j in range(n) if not targets[u, j] and not exclude[u, j]]
        want = _brute_auc(s, pos, neg)
        assert got[u] == pytest.approx(want, abs=TOL), u
    assert got[0] == pytest.approx(0.5)


def test_accumulator_chunks_equal_one_pass_and_brute_force() -> None:
    scores, targets, exclude = make_batch()
    want = brute_force(scores, targets, exclude, KS)

    one = RankingMetricAccumulator(KS)
    one.update(scores, targets, exclude)
    res_one = one.compute()

    two = RankingMetricAccumulator(KS)
    two.update(scores[:3], targets[:3], exclude[:3])
    two.update(scores[3:], targets[3:], exclude[3:])
    res_two = two.compute()

    assert list(res_one) == metric_names(KS)
    for name in metric_names(KS):
        vals = [w[name] for w in want if not math.isnan(w[name])]
        brute_mean = sum(vals) / len(vals)
        assert res_one[name].item() == pytest.approx(brute_mean, abs=TOL), name
        assert res_two[name].item() == pytest.approx(brute_mean, abs=TOL), name
    # AUC averages over fewer users than the top-k metrics (user 1 has no negatives).
    assert one.counts[metric_names(KS).index("auc")].item() == 4
    assert one.counts[0].item() == 5

    # Two "ranks" merged by summing states (what DDP's dist_reduce_fx="sum" does) give the same answer.
    rank_a, rank_b = RankingMetricAccumulator(KS), RankingMetricAccumulator(KS)
    rank_a.update(scores[:2], targets[:2], exclude[:2])
    rank_b.update(scores[2:], targets[2:], exclude[2:])
    rank_a.merge_state(rank_b)
    for name, value in rank_a.compute().items():
        assert value.item() == pytest.approx(res_one[name].item(), abs=TOL), name

    one.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert torch.isnan(one.compute()["auc"])  # nothing seen: undefined, not 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_scores(dtype: torch.dtype) -> None:
    _, targets, exclude = make_batch()
    b, n = targets.shape
    g = torch.Generator().manual_seed(7)
    # Small integers are exact in fp16/bf16, so the low-precision input carries the same ranking as
    # float32 and results must agree; random floats would collide into ties after rounding.
    scores = torch.stack([torch.randperm(n, generator=g) for _ in range(b)]).float() / 4
    ref = ranking_metrics(scores, targets, exclude, KS)
    got = ranking_metrics(scores.to(dtype), targets, exclude, KS)
    for name in ref:
        assert got[name].dtype == torch.float32
        torch.testing.assert_close(got[name], ref[name], atol=TOL, rtol=0, equal_nan=True)

    # Arbitrary half-precision scores (with rounding ties) still run and match the brute force on
    # the upcast values for AUC, which is tie-exact.
    rough = torch.rand(b, n, generator=g).to(dtype)
    got = ranking_metrics(rough, targets, exclude, KS)
    want = brute_force(rough.float(), targets, exclude, KS)
    for u in range(b):
        w = want[u]["auc"]
        v = got["auc"][u].item()
        assert (math.isnan(w) and math.isnan(v)) or v == pytest.approx(w, abs=TOL)


def test_float64_stays_float64_and_deterministic() -> None:
    scores, targets, exclude = make_batch(seed=5)
    a = ranking_metrics(scores.double(), targets, exclude, KS)
    b = ranking_metrics(scores.double(), targets, exclude, KS)
    for name in a:
        assert a[name].dtype == torch.float64
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0, equal_nan=True)
    assert_matches(a, brute_force(scores, targets, exclude, KS), tol=1e-12)


def test_invalid_arguments() -> None:
    scores, targets, exclude = make_batch()
    with pytest.raises(ValueError):
        ranking_metrics(scores, targets, exclude, [])
    with pytest.raises(ValueError):
        ranking_metrics(scores, targets, exclude, [0, 5])
    with pytest.raises(ValueError):
        ranking_metrics(scores, targets[:, :10], exclude, KS)
    with pytest.raises(ValueError):
        ranking_metrics(scores[0], targets[0], exclude[0], KS)
    with pytest.raises(TypeError):
        ranking_metrics(scores.long(), targets, exclude, KS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    scores, targets, exclude = make_batch()
    cpu = ranking_metrics(scores, targets, exclude, KS)
    gpu = ranking_metrics(scores.cuda(), targets.cuda(), exclude.cuda(), KS)
    for name in cpu:
        assert gpu[name].device.type == "cuda"
        torch.testing.assert_close(gpu[name].cpu(), cpu[name], atol=TOL, rtol=0, equal_nan=True)
    acc = RankingMetricAccumulator(KS).cuda()
    acc.update(scores.cuda().half(), targets.cuda(), exclude.cuda())
    assert all(v.device.type == "cuda" for v in acc.compute().values())
