"""RecBole 1.2.1's side of the evaluation-speed benchmark: its own full-sort test pass on the same split and scores.

The interactions are written as RecBole's benchmark files (train/valid/test: the split is identical), the same
embeddings are loaded into its BPR model (whose `full_sort_predict` is the same dot product) and the block size is
the same (`eval_batch_size = block * item_num`). The loop is `Trainer.evaluate`'s body with a timer per stage,
calling RecBole's own methods: the test DataLoader's collate (history and positive indices),
`Trainer._full_sort_batch_eval` (`full_sort_predict`, history masked to -inf), `Collector.eval_batch_collect`
(`rec.topk` and, for GAUC, a full descending sort) and, once at the end, `Collector.get_data_struct` +
`Evaluator.evaluate`. `max_users` stops after the blocks holding the first N test users (a full ML-20M pass takes
about 12 minutes on 2 cores). With `check`, plain `Trainer.evaluate` must give the same numbers as the timed loop.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ["NDCG", "Recall", "Hit", "MRR", "Precision", "GAUC"]


def run_recbole(
    u: np.ndarray,
    i: np.ndarray,
    split: np.ndarray,
    user_emb: Any,
    item_emb: Any,
    ks: tuple[int, ...],
    block: int,
    max_users: int | None,
    check: bool,
) -> dict[str, Any]:
    """The timed pass in a scratch folder, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="lmrec_bench_eval_recbole_"))
    try:
        return _recbole_pass(workdir, u, i, split, user_emb, item_emb, ks, block, max_users, check)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _recbole_pass(workdir: Path, u, i, split, user_emb, item_emb, ks, block, max_users, check) -> dict[str, Any]:
    import pandas as pd
    import torch

    from lmrec.bench.references import numpy2_aliases, recbole_trainer

    numpy2_aliases()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import BPR

    logging.getLogger().setLevel(logging.ERROR)
    (workdir / "synth").mkdir()
    for code, name in enumerate(("train", "valid", "test")):
        part = split == code
        frame = pd.DataFrame({"user_id:token": u[part], "item_id:token": i[part]})
        frame.to_csv(workdir / "synth" / f"synth.{name}.inter", sep="\t", index=False)
    item_num = int(i.max()) + 2
    config = Config(
        model="BPR",
        dataset="synth",
        config_dict={
            "data_path": str(workdir),
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]},
            "metrics": METRICS,
            "topk": list(ks),
            "valid_metric": "NDCG@10",
            "embedding_size": user_emb.shape[1],
            "eval_batch_size": block * item_num,
            "metric_decimal_place": 12,
            "use_gpu": False,
            "show_progress": False,
            "checkpoint_dir": str(workdir / "saved"),
            "seed": 0,
        },
    )
    start = time.perf_counter()
    dataset = create_dataset(config)
    _, _, test_data = data_preparation(config, dataset)
    prep_seconds = time.perf_counter() - start
    if dataset.item_num != item_num:
        raise RuntimeError("every item must occur in RecBole's files for the catalogues to match")
    model = BPR(config, dataset)
    with torch.no_grad():  # RecBole id -> our row; id 0 is RecBole's padding, masked to -inf anyway
        for emb, field, table in (
            (model.user_embedding, "user_id", user_emb),
            (model.item_embedding, "item_id", item_emb),
        ):
            rows = torch.tensor([int(t) for t in dataset.field2id_token[field][1:]])
            emb.weight.zero_()
            emb.weight[1:] = table[rows]
    trainer = recbole_trainer(config, model, workdir)
    model.eval()
    trainer.tot_item_num = test_data._dataset.item_num
    trainer.item_tensor = test_data._dataset.get_item_feature()
    seconds: dict[str, float] = defaultdict(float)
    users_done, done_ids = 0, []
    with torch.no_grad():
        loader = iter(test_data)
        while max_users is None or users_done < max_users:
            start = time.perf_counter()
            batched = next(loader, None)
            seconds["collate"] += time.perf_counter() - start
            if batched is None:
                break
            start = time.perf_counter()
            interaction, scores, positive_u, positive_i = trainer._full_sort_batch_eval(batched)
            seconds["score + mask"] += time.perf_counter() - start
            start = time.perf_counter()
            trainer.eval_collector.eval_batch_collect(scores, interaction, positive_u, positive_i)
            seconds["collect"] += time.perf_counter() - start
            users_done += len(interaction)
            done_ids.append(interaction["user_id"])
        start = time.perf_counter()
        trainer.eval_collector.model_collect(model)
        result = trainer.evaluator.evaluate(trainer.eval_collector.get_data_struct())
        seconds["evaluate"] += time.perf_counter() - start
    tokens = dataset.field2id_token["user_id"]
    lmrec_users = np.array([int(tokens[j]) for j in torch.cat(done_ids).tolist()], dtype=np.int64)
    out = {
        "seconds": dict(seconds),
        "metrics": {k: float(v) for k, v in result.items()},
        "users": users_done,
        "lmrec_user_ids": lmrec_users,
        "data_preparation_s": prep_seconds,
    }
    if check and max_users is None:  # the timed loop is Trainer.evaluate's body: the plain call must agree
        plain = trainer.evaluate(test_data, load_best_model=False)
        out["same_as_trainer_evaluate"] = all(abs(float(v) - out["metrics"][k]) < 1e-9 for k, v in plain.items())
    return out


def compare(lm: dict[str, float], rb: dict[str, Any], ks: tuple[int, ...]) -> dict[str, float]:
    """The largest |lmrec - RecBole| of the top-k metrics over the same users, and of AUC weighted by #targets
    against RecBole's GAUC (RecBole sums midranks in float32, hence the looser tolerance for it)."""
    names = (("ndcg", "ndcg"), ("recall", "recall"), ("hr", "hit"), ("mrr", "mrr"), ("precision", "precision"))
    worst = max(abs(lm[f"{ours}@{k}"] - rb["metrics"][f"{theirs}@{k}"]) for k in ks for ours, theirs in names)
    return {"max_topk_diff": worst, "gauc_diff": abs(lm["auc_weighted_by_targets"] - rb["metrics"]["gauc"])}
