"""Per-block costs of the evaluation-speed benchmark's `--micro` part: what the AUC design rests on.

On the first block of test users (scores precomputed, median of `repeats`):
  * bare: mask in place + top-k (the matmul is excluded here);
  * lmrec without / with AUC (inplace), and with AUC for several chunk sizes (`CHUNK_ELEMENTS`);
  * the argsort-based AUC of OLD_COMMIT (its whole `ranking_metrics`, loaded from git when the checkout has it);
  * "count per target": one target slot of the sort-free alternative (`#neg < t` and `#neg <= t` for one target per
    user, two compares and two uint8 accumulations over the block); times the mean targets per user it is what
    that method would cost, and AUC increment / per-slot cost is the crossover number of targets.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import time
import types
from collections.abc import Callable
from typing import Any

from lmrec.bench.record import PACKAGE_DIR

#: The commit whose `ranking_metrics` (argsort-based AUC) is timed as "before".
OLD_COMMIT = "9ded386"


def old_ranking_metrics() -> Callable | None:
    """`ranking_metrics` as of OLD_COMMIT, from git (None outside a checkout that has it)."""
    done = subprocess.run(
        ["git", "-C", str(PACKAGE_DIR), "show", f"{OLD_COMMIT}:src/lmrec/tasks/metrics.py"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout:
        return None
    module = types.ModuleType("lmrec_old_metrics")
    exec(compile(done.stdout, f"{OLD_COMMIT}:metrics.py", "exec"), module.__dict__)
    return module.ranking_metrics


def run_micro(task: Any, splits: Any, user_emb: Any, item_emb: Any, block: int, repeats: int = 5) -> dict[str, float]:
    """The per-block costs listed in the module docstring, in seconds."""
    import torch

    import lmrec.tasks.metrics as metrics_module
    from lmrec.tasks.metrics import ranking_metrics

    ks = tuple(task.ks)
    dataset = task.eval_dataset(splits, "test")
    batch = dataset.__getitems__(list(range(min(block, len(dataset)))))
    targets, exclude = batch["targets"], batch["exclude"]
    scores = user_emb[batch["users"]] @ item_emb.T

    def median(fn: Callable, fresh: bool = True, n: int = repeats) -> float:
        """Median seconds of `n` calls of `fn` on fresh copies of the scores (or the scores)."""
        times = []
        for _ in range(n):
            arg = scores.clone() if fresh else scores
            start = time.perf_counter()
            fn(arg)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    out = {
        "users": len(scores),
        "items": scores.shape[1],
        "mean_targets": float((targets & ~exclude).sum(1).double().mean()),
    }
    out["bare"] = median(lambda s: torch.topk(s.masked_fill_(exclude, -math.inf), max(ks), dim=1))
    out["lmrec, no AUC"] = median(lambda s: ranking_metrics(s, targets, exclude, ks, auc=False, inplace=True))
    out["lmrec"] = median(lambda s: ranking_metrics(s, targets, exclude, ks, inplace=True))
    out["lmrec, copy"] = median(lambda s: ranking_metrics(s, targets, exclude, ks), fresh=False)
    default_chunk = metrics_module.CHUNK_ELEMENTS
    try:
        for shift in (17, 19, 21, 23, 25):
            metrics_module.CHUNK_ELEMENTS = 1 << shift
            out[f"lmrec, chunk 2^{shift}"] = median(lambda s: ranking_metrics(s, targets, exclude, ks, inplace=True))
    finally:
        metrics_module.CHUNK_ELEMENTS = default_chunk
    old = old_ranking_metrics()
    if old is not None:
        out[f"argsort AUC ({OLD_COMMIT})"] = median(lambda s: old(s, targets, exclude, ks), fresh=False, n=3)
    neg_scores = scores.masked_fill(exclude | targets, math.nan)  # NaN compares False: only negatives count
    probe = scores.gather(1, targets.to(torch.uint8).argmax(1, keepdim=True))  # one target score per user
    acc = torch.zeros(scores.shape, dtype=torch.uint8)
    flags = torch.empty(scores.shape, dtype=torch.bool)

    def one_slot(_: Any) -> None:
        """Eight target slots of the counting method (divided by 8 afterwards)."""
        for _ in range(8):
            acc.add_(torch.lt(neg_scores, probe, out=flags).view(torch.uint8))
            acc.add_(torch.le(neg_scores, probe, out=flags).view(torch.uint8))

    out["count per target"] = median(one_slot, fresh=False) / 8
    return out
