"""Ranking baseline: most-popular items, evaluated on exactly lmrec's ranking split with lmrec's metric code.

What is measured
    Full-ranking test metrics (NDCG, Recall, HR, MRR, Precision @ 5/10/20, and AUC) of MostPop: every item is scored
    by its number of training interactions, the same scores for every user. The split is lmrec's own: the ranking
    datamodule is built with the default config's options (`seed=42`, random 8:1:1 split, the default text
    template; `RecDataModule`'s defaults), and its test dataloader is run through
    `lmrec.tasks.metrics.RankingMetricAccumulator([5, 10, 20])` with the same masking as lmrec's evaluation
    (training and validation items of each user are excluded from the ranking; users without test items are skipped).
    Items with equal counts tie; `torch.topk` orders ties arbitrarily, and AUC counts ties as 1/2.

Why
    MostPop is the floor any personalised ranker must clear on MovieLens. `--lmrec-metrics` prints an lmrec ranking
    run's metrics.json (`lmrec-train task=ranking ...`, test/ndcg@10 etc.) side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from benchutil import write_json

REPO = Path(__file__).resolve().parents[1]
KS = (5, 10, 20)
SHOWN = ["ndcg@5", "ndcg@10", "ndcg@20", "recall@10", "recall@20", "hr@10", "mrr@10", "precision@10", "auc"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO / "data" / "ml-latest-small"), help="MovieLens folder")
    parser.add_argument("--seed", type=int, default=42, help="split seed (default 42, as the default config)")
    parser.add_argument("--eval-batch-size", type=int, default=1024, help="users per evaluation batch (1024)")
    parser.add_argument("--lmrec-metrics", default=None, help="an lmrec ranking run's metrics.json, for comparison")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from lmrec.data.datamodule import RecDataModule
    from lmrec.data.sources.movielens import MovieLensLatest
    from lmrec.data.splits import TRAIN
    from lmrec.tasks.metrics import RankingMetricAccumulator
    from lmrec.tasks.ranking import RankingTask

    dm = RecDataModule(
        MovieLensLatest(args.data_root), RankingTask(), seed=args.seed, eval_batch_size=args.eval_batch_size
    )
    frame = dm.prepare().interactions
    train = frame.loc[frame["split"] == TRAIN, ["user_idx", "item_idx"]].drop_duplicates()
    items = torch.tensor(train["item_idx"].to_numpy(), dtype=torch.long)
    counts = torch.bincount(items, minlength=dm.num_items).to(torch.float32)  # training users per item

    metric = RankingMetricAccumulator(KS)
    users = 0
    for batch in dm.test_dataloader():
        scores = counts.unsqueeze(0).expand(len(batch["users"]), -1)
        metric.update(scores, batch["targets"], batch["exclude"])
        users += len(batch["users"])
    mostpop = {name: float(value) for name, value in metric.compute().items()}

    lmrec: dict[str, float] | None = None
    if args.lmrec_metrics:
        raw = json.loads(Path(args.lmrec_metrics).read_text())
        lmrec = {name: float(raw.get(f"test/{name}", math.nan)) for name in mostpop}

    print(
        f"MostPop on lmrec's ranking split (seed {args.seed}, random 8:1:1), {users} test users, "
        f"{dm.num_items} items, train/val items masked"
    )
    header = f"{'metric':<14}{'MostPop':>10}"
    if lmrec is not None:
        header += f"{'lmrec':>10}{'lmrec/MostPop':>15}"
    print(header)
    for name in SHOWN:
        line = f"{name:<14}{mostpop[name]:>10.4f}"
        if lmrec is not None:
            ratio = lmrec[name] / mostpop[name] if mostpop[name] else math.nan
            line += f"{lmrec[name]:>10.4f}{ratio:>15.2f}"
        print(line)
    if lmrec is not None:
        if math.isnan(lmrec["ndcg@10"]):
            print(f"{args.lmrec_metrics} has no test/ndcg@10: is it a ranking run?")
        else:
            better = "lmrec" if lmrec["ndcg@10"] > mostpop["ndcg@10"] else "MostPop"
            print(f"higher test NDCG@10: {better} ({args.lmrec_metrics})")

    result: dict = {
        "benchmark": "baseline_mostpop",
        "seed": args.seed,
        "test_users": users,
        "num_items": dm.num_items,
        "mostpop": mostpop,
    }
    if lmrec is not None:
        result["lmrec"] = lmrec
        result["lmrec_metrics_file"] = str(args.lmrec_metrics)
    write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
