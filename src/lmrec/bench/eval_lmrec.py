"""lmrec's side of the evaluation-speed benchmark: the ranking task's test pass against the bare cost of its blocks.

    lmrec           `RankingTask.update_metrics` on each block of users, exactly as training and eval runs call it:
                    score the block (`U[users] @ I.T`), then every metric of the task's accumulator (NDCG, Recall,
                    HR, MRR, Precision @ks and exact AUC);
    lmrec, per-user rows  the same, also keeping every user's values (`per_user`, on by default), gathered at the
                    end of the pass: its cost over `lmrec` is the per-user output's overhead (target <= 5 %);
    lmrec, inplace  `ranking_metrics(..., inplace=True)`: the scores are a throwaway, masked and sorted in place;
    lmrec, no AUC   `RankingMetricAccumulator(ks, auc=False, inplace=True)`;
    bare            what any full-ranking evaluation must do on the same blocks: the same matmul, the same masking
                    of seen items (in place) and one `torch.topk(k=max ks)`; nothing else.

Stages are timed block by block, their order rotated every block, so drift in machine load hits all alike.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

import numpy as np


def build_splits(u: np.ndarray, i: np.ndarray, users: int, items: int, seed: int) -> tuple[Any, np.ndarray]:
    """lmrec's own objects: a random 80/10/10 split (`random_ratio_split`) wrapped as `InteractionSplits`."""
    import pandas as pd

    from lmrec.data.interactions import InteractionSplits
    from lmrec.data.processed import ProcessedData
    from lmrec.data.splits import random_ratio_split

    split = random_ratio_split(len(u), [8, 1, 1], seed)
    frame = pd.DataFrame(
        {"user_idx": u, "item_idx": i, "rating": np.ones(len(u), np.float32), "timestamp": 0, "split": split}
    )
    data = ProcessedData(
        interactions=frame,
        users=pd.DataFrame({"user_id": np.arange(users)}),
        items=pd.DataFrame({"item_id": np.arange(items), "text": ""}),
    )
    return InteractionSplits(data), split


class DotModel:
    """The `Scorer` the ranking task evaluates: scores are user_emb[users] @ item_emb.T (a factorisation model)."""

    def __init__(self, user_emb: Any, item_emb: Any) -> None:
        self.user_emb, self.item_emb = user_emb, item_emb

    def score_all_items(self, users: Any, sequences: Any = None) -> Any:
        """Scores [users, items]: the only thing the ranking task asks of a model here."""
        return self.user_emb[users] @ self.item_emb.T


def run_lmrec(task: Any, splits: Any, user_emb: Any, item_emb: Any, block: int) -> dict[str, Any]:
    """Seconds per stage over every test user, the task's metrics, and per-user values (to compare with RecBole
    on any subset of users)."""
    import torch

    from lmrec.tasks.metrics import RankingMetricAccumulator, ranking_metrics

    ks = tuple(task.ks)
    dataset = task.eval_dataset(splits, "test")
    model = DotModel(user_emb, item_emb)
    wired = task.make_metrics("test")  # what training and eval runs use
    task.record_rows(True)  # the same, also keeping each user's values (per_user/test.parquet, on by default)
    with_rows = task.evaluation_metrics("test")
    task.record_rows(False)
    lean = RankingMetricAccumulator(ks, auc=False, inplace=True)
    seconds: dict[str, float] = defaultdict(float)
    per_user: dict[str, list] = defaultdict(list)

    def bare(batch: dict) -> Any:
        """The work any full-ranking evaluation must do: matmul, mask, one top-k."""
        scores = model.score_all_items(batch["users"])
        scores.masked_fill_(batch["exclude"], -math.inf)
        return torch.topk(scores, max(ks), dim=1).indices

    def inplace(batch: dict) -> dict:
        """lmrec's metrics on throwaway scores, kept per user to compare with RecBole."""
        scores = model.score_all_items(batch["users"])
        return ranking_metrics(scores, batch["targets"], batch["exclude"], ks, inplace=True)

    stages = [
        ("matmul", lambda b: model.score_all_items(b["users"])),
        ("bare", bare),
        ("lmrec", lambda b: task.update_metrics(wired, model, b)),
        ("lmrec, per-user rows", lambda b: task.update_metrics(with_rows, model, b)),
        ("lmrec, inplace", inplace),
        ("lmrec, no AUC", lambda b: lean.update(model.score_all_items(b["users"]), b["targets"], b["exclude"])),
    ]
    n_users = len(dataset)
    with torch.inference_mode():
        for index, start in enumerate(range(0, n_users, block)):
            began = time.perf_counter()
            batch = dataset.__getitems__(list(range(start, min(n_users, start + block))))
            seconds["build blocks"] += time.perf_counter() - began
            shift = index % len(stages)  # rotate the order so that no stage always runs first
            for name, fn in stages[shift:] + stages[:shift]:
                began = time.perf_counter()
                out = fn(batch)
                seconds[name] += time.perf_counter() - began
                if name == "lmrec, inplace":
                    per_user["user"].append(batch["users"])
                    per_user["n_targets"].append((batch["targets"] & ~batch["exclude"]).sum(1))
                    for key, value in out.items():
                        per_user[key].append(value.double())
    values = {k: torch.cat(v).numpy() for k, v in per_user.items()}
    metrics = {k: float(v) for k, v in wired["ranking"].compute().items()}
    began = time.perf_counter()
    kept = with_rows["rows"].rows()  # gathering the rows at the end of the pass is part of their cost
    seconds["lmrec, per-user rows"] += time.perf_counter() - began
    return {
        "seconds": dict(seconds),
        "metrics": metrics,
        "per_user": values,
        "rows_kept": len(kept["user"]),
        "test_users": n_users,
        "blocks": math.ceil(n_users / block),
    }


def summarize(per_user: dict[str, np.ndarray], users: np.ndarray | None) -> dict[str, float]:
    """Means over non-NaN users (of `users` only, if given), and AUC weighted by #targets as RecBole's GAUC is."""
    keep = np.ones(len(per_user["user"]), bool) if users is None else np.isin(per_user["user"], users)
    out = {key: float(np.nanmean(value[keep])) for key, value in per_user.items() if key not in ("user", "n_targets")}
    auc, weight = per_user["auc"][keep], per_user["n_targets"][keep].astype(np.float64)
    ok = ~np.isnan(auc)
    out["auc_weighted_by_targets"] = float((auc[ok] * weight[ok]).sum() / weight[ok].sum())
    return out
