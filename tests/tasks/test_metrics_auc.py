"""The fast, exact AUC of lmrec.tasks.auc (values-only sort + searchsorted) against two independent references.

* ``reference_auc`` is the previous implementation (argsort, tie blocks found with cummax/cummin), kept here
  verbatim in spirit so the new path is compared with a different algorithm on large inputs;
* ``pairwise_auc`` counts pairs one by one in plain Python (small inputs only).

Both compute ``2U`` as an exact integer, so the fast path must agree *exactly*, not just to a tolerance.  The data
sets are built to exercise what a shortcut would get wrong (ties between targets and negatives, ties with excluded
items, genuine +-inf scores, rows with no targets or no negatives, one row with far more targets than the others,
chunks and threaded sorts), and ``test_tie_data_discriminates`` checks that getting ties wrong changes the answer.
"""

from __future__ import annotations

import math
import threading

import pytest
import torch

import lmrec.tasks.auc as auc_module
import lmrec.tasks.metrics as metrics_module
from lmrec.tasks.metrics import RankingMetricAccumulator, metric_names, ranking_metrics

KS = [1, 5, 10]


def reference_twice_u(scores: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """2U per row by full argsort: #neg below + #neg at-or-below each positive, read at tie-block boundaries."""
    b, n = scores.shape
    sorted_scores, order = torch.sort(scores.double(), dim=1)
    block_start = torch.ones_like(pos)
    block_start[:, 1:] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
    block_end = torch.ones_like(pos)
    block_end[:, :-1] = block_start[:, 1:]
    neg_sorted = neg.gather(1, order).long()
    pos_sorted = pos.gather(1, order)
    cum_incl = neg_sorted.cumsum(dim=1)
    cum_excl = cum_incl - neg_sorted
    neg_below = torch.cummax(cum_excl.masked_fill(~block_start, 0), dim=1).values
    neg_at_or_below = torch.cummin(cum_incl.masked_fill(~block_end, n + 1).flip(1), dim=1).values.flip(1)
    return (neg_below + neg_at_or_below).masked_fill(~pos_sorted, 0).sum(dim=1)


def reference_auc(scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None) -> torch.Tensor:
    excl = exclude if exclude is not None else torch.zeros_like(targets)
    pos = targets & ~excl
    neg = ~excl & ~pos
    denom = (2 * pos.sum(1) * neg.sum(1)).double()
    return torch.where(denom > 0, reference_twice_u(scores, pos, neg).double() / denom, torch.nan)


def pairwise_auc(scores: list[float], targets: list[bool], exclude: list[bool]) -> float:
    pos = [s for s, t, e in zip(scores, targets, exclude, strict=True) if t and not e]
    neg = [s for s, t, e in zip(scores, targets, exclude, strict=True) if not t and not e]
    if not pos or not neg:
        return math.nan
    return sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg) / (len(pos) * len(neg))


def assert_same(got: torch.Tensor, want: torch.Tensor) -> None:
    """Bit-for-bit equal once the float64 reference is rounded to the output dtype (both are exact 2U / denom)."""
    assert got.shape == want.shape
    torch.testing.assert_close(got, want.to(got.dtype), atol=0, rtol=0, equal_nan=True)


def fast_auc(scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None, **kw) -> torch.Tensor:
    return ranking_metrics(scores, targets, exclude, KS, **kw)["auc"]


def make_case(seed: int, b: int, n: int, kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scores of one of several tie regimes, random targets/excludes, and hand-made edge rows."""
    g = torch.Generator().manual_seed(seed)
    if kind == "continuous":
        scores = torch.randn(b, n, generator=g)
    elif kind == "one_decimal":  # ~60 distinct values: ties everywhere
        scores = torch.round(torch.randn(b, n, generator=g), decimals=1)
    elif kind == "integers":  # 4 distinct values
        scores = torch.randint(0, 4, (b, n), generator=g).float()
    else:
        raise ValueError(kind)
    targets = torch.rand(b, n, generator=g) < torch.rand(b, 1, generator=g) * 0.2
    exclude = torch.rand(b, n, generator=g) < 0.2
    targets[0] = False  # no targets: NaN
    targets[1] = True  # every item a target: no negatives, NaN
    targets[2], exclude[2] = True, False
    targets[2, 0] = False  # every item but one a target (far more targets than any other row)
    exclude[3] = True
    exclude[3, :2] = False
    targets[3, 0], targets[3, 1] = True, False  # a single candidate pair
    scores[4] = scores[4, 0]  # a row of equal scores: AUC exactly 1/2
    scores[5, : n // 3] = -math.inf  # genuine -inf scores are ordinary (tied) candidates ...
    scores[5, n // 3 : n // 2] = math.inf  # ... and so are genuine +inf scores
    targets[5, :: n // 10] = True
    exclude[6] = targets[6]  # every target excluded: NaN
    return scores, targets, exclude


@pytest.mark.parametrize("kind", ["continuous", "one_decimal", "integers"])
@pytest.mark.parametrize("seed", range(3))
def test_matches_sort_reference(kind: str, seed: int) -> None:
    scores, targets, exclude = make_case(seed, b=40, n=3000, kind=kind)
    want = reference_auc(scores, targets, exclude)
    assert_same(fast_auc(scores, targets, exclude), want)
    assert math.isnan(want[0]) and math.isnan(want[1]) and math.isnan(want[6]) and want[4] == 0.5
    assert not math.isnan(want[2]) and not math.isnan(want[3]) and not math.isnan(want[5])
    # Without exclusions as well.
    assert_same(fast_auc(scores, targets, None), reference_auc(scores, targets, None))


@pytest.mark.parametrize("kind", ["continuous", "integers"])
def test_matches_pairwise_count(kind: str) -> None:
    scores, targets, exclude = make_case(11, b=12, n=60, kind=kind)
    got = fast_auc(scores, targets, exclude).tolist()
    for u in range(len(scores)):
        want = pairwise_auc(scores[u].tolist(), targets[u].tolist(), exclude[u].tolist())
        assert (math.isnan(want) and math.isnan(got[u])) or got[u] == pytest.approx(want, abs=1e-7), u


def test_tie_data_discriminates() -> None:
    """Guard against tests that cannot fail: on these data, counting ties as 0 or 1 instead of 1/2 changes AUC,
    and the excluded items tied with targets change it too if they were (wrongly) counted as negatives."""
    scores, targets, exclude = make_case(0, b=40, n=3000, kind="integers")
    pos, excl = targets & ~exclude, exclude
    neg = ~excl & ~pos
    twice_u = reference_twice_u(scores, pos, neg)
    lower = 2 * torch.stack([((scores[u][neg[u]] < scores[u][pos[u]].unsqueeze(1)).sum()) for u in range(40)])
    assert (twice_u != lower).sum() > 30  # ties matter in almost every row
    with_excluded = reference_auc(scores, targets, None)
    assert (reference_auc(scores, targets, exclude) - with_excluded).abs().nan_to_num().max() > 1e-3


def test_chunked_and_threaded_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small chunks, threaded numpy sorts, and one chunk per row all give the exact reference answer, in the
    default (copying) mode and in place."""
    scores, targets, exclude = make_case(4, b=70, n=2000, kind="one_decimal")
    want = reference_auc(scores, targets, exclude)
    monkeypatch.setattr(auc_module, "_MIN_ROWS_PER_THREAD", 1)
    monkeypatch.setattr(auc_module, "_MIN_ITEMS_FOR_THREADS", 1)
    seen_threads: set[int] = set()
    chunk_counts = auc_module._chunk_counts

    def recording(*args):
        seen_threads.add(threading.get_ident())
        return chunk_counts(*args)

    monkeypatch.setattr(auc_module, "_chunk_counts", recording)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        for rows in (1, 7, 70):
            monkeypatch.setattr(metrics_module, "CHUNK_ELEMENTS", rows * 2000)
            assert_same(fast_auc(scores, targets, exclude), want)
            assert_same(fast_auc(scores.clone(), targets, exclude, inplace=True), want)
    finally:
        torch.set_num_threads(threads)
    assert len(seen_threads) >= 2  # the rows really were split over worker threads


@pytest.mark.parametrize("kind", ["continuous", "integers"])
def test_device_generic_path(kind: str) -> None:
    """The torch-only path (used on accelerators) run on CPU: same exact counts as the reference."""
    scores, targets, exclude = make_case(7, b=40, n=1000, kind=kind)
    pos, neg = targets & ~exclude, ~exclude & ~targets
    twice_u, n_pos, n_neg = auc_module._twice_u_torch(scores.masked_fill(exclude, -math.inf), pos, exclude)
    assert torch.equal(twice_u, reference_twice_u(scores, pos, neg))
    assert torch.equal(n_pos, pos.sum(1)) and torch.equal(n_neg, neg.sum(1))
    twice_u, _, _ = auc_module._twice_u_torch(scores.clone(), targets, None)
    assert torch.equal(twice_u, reference_twice_u(scores, targets, ~targets))
    original = scores.clone()
    for rows in (1, 7, 40):  # the chunked driver, read-only and in place
        got = auc_module._counts_torch(scores, targets, exclude, masked=False, rows=rows)
        assert torch.equal(scores, original)
        assert torch.equal(got[0], reference_twice_u(scores, pos, neg)) and torch.equal(got[2], neg.sum(1))
        got = auc_module._counts_torch(scores.masked_fill(exclude, -math.inf), targets, exclude, masked=True, rows=rows)
        assert torch.equal(got[0], reference_twice_u(scores, pos, neg)) and torch.equal(got[1], pos.sum(1))


def test_every_row_shape_at_once() -> None:
    """Rows with 0, 1, a few, half and all-but-one targets in one batch (the padded target table is as wide as
    the largest row, the others are masked)."""
    g = torch.Generator().manual_seed(5)
    n = 500
    scores = torch.randint(0, 20, (5, n), generator=g).float()
    targets = torch.zeros(5, n, dtype=torch.bool)
    for row, count in enumerate([0, 1, 5, n // 2, n - 1]):
        targets[row, torch.randperm(n, generator=g)[:count]] = True
    assert_same(fast_auc(scores, targets, None), reference_auc(scores, targets, None))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_other_dtypes(dtype: torch.dtype) -> None:
    scores, targets, exclude = make_case(2, b=30, n=1500, kind="continuous")
    low = scores.to(dtype)  # bf16/fp16 rounding creates many ties; the reference sees the same rounded values
    got = fast_auc(low, targets, exclude)
    assert got.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert_same(got, reference_auc(low.double(), targets, exclude))


def test_inplace_matches_copy_and_default_leaves_scores_alone() -> None:
    scores, targets, exclude = make_case(3, b=25, n=800, kind="one_decimal")
    original = scores.clone()
    safe = ranking_metrics(scores, targets, exclude, KS)
    assert torch.equal(scores, original)  # the default never writes to the caller's tensor
    scratch = scores.clone()
    fast = ranking_metrics(scratch, targets, exclude, KS, inplace=True)
    assert not torch.equal(scratch, original)  # it really was used as scratch space
    for name in safe:
        torch.testing.assert_close(fast[name], safe[name], atol=0, rtol=0, equal_nan=True)
    # A non-contiguous tensor is copied even with inplace=True (the sort needs contiguous rows).
    transposed = original.t().contiguous().t()
    again = ranking_metrics(transposed, targets, exclude, KS, inplace=True)
    assert torch.equal(transposed, original)
    for name in safe:
        torch.testing.assert_close(again[name], safe[name], atol=0, rtol=0, equal_nan=True)


def test_auc_false_drops_the_entry_only() -> None:
    scores, targets, exclude = make_case(1, b=20, n=400, kind="continuous")
    full = ranking_metrics(scores, targets, exclude, KS)
    lean = ranking_metrics(scores, targets, exclude, KS, auc=False)
    assert list(lean) == metric_names(KS, auc=False) == list(full)[:-1]
    for name in lean:
        torch.testing.assert_close(lean[name], full[name], atol=0, rtol=0, equal_nan=True)
    acc = RankingMetricAccumulator(KS, auc=False, inplace=True)
    acc.update(scores.clone(), targets, exclude)
    assert list(acc.compute()) == metric_names(KS, auc=False)
    assert torch.isclose(acc.compute()["ndcg@5"], full["ndcg@5"].nanmean())


def test_empty_batch() -> None:
    out = ranking_metrics(torch.zeros(0, 10), torch.zeros(0, 10, dtype=torch.bool), None, KS)
    assert list(out) == metric_names(KS) and all(v.shape == (0,) for v in out.values())


def test_large_catalogue_exact() -> None:
    """A catalogue large enough for numpy's vectorised sort kernels (small rows are insertion-sorted)."""
    g = torch.Generator().manual_seed(9)
    b, n = 8, 40_000
    scores = torch.round(torch.randn(b, n, generator=g) * 30)  # ~200 distinct values
    targets = torch.rand(b, n, generator=g) < 0.001
    exclude = torch.rand(b, n, generator=g) < 0.01
    assert_same(fast_auc(scores, targets, exclude), reference_auc(scores, targets, exclude))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_reference() -> None:
    scores, targets, exclude = make_case(0, b=40, n=3000, kind="integers")
    got = fast_auc(scores.cuda(), targets.cuda(), exclude.cuda())
    assert got.device.type == "cuda"
    assert_same(got.cpu(), reference_auc(scores, targets, exclude))
