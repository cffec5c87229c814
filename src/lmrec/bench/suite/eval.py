"""Full-ranking evaluation speed: lmrec's metrics against the bare cost of the same blocks, and against RecBole 1.2.

What is measured
    One full-ranking test pass over every test user of a synthetic data set shaped like MovieLens-20M (138,493
    users x 26,744 items, ~20M interactions, long-tailed popularity and activity: `lmrec.bench.synthetic.eval_data`),
    split 80/10/10 at random with lmrec's own `random_ratio_split`, scored by random 64-d user and item embeddings
    (a dot product, like a factorisation model), users in blocks of `--block`. The ranking task is the one
    `task=ranking` configures (its ks, tie policy and metrics), built by `build_data` as lmrec-train builds it.
    lmrec's stages are in `lmrec.bench.eval_lmrec`: the headline ratio is lmrec / bare (target <= 2).
    RecBole 1.2.1's own full-sort evaluation of the same split and scores (`lmrec.bench.eval_recbole`) runs where
    RecBole is installed (`pip install --no-deps recbole==1.2.1 texttable colorama`); its metrics must agree with
    lmrec's over the same users (top-k to 1e-6; AUC weighted by #targets against its GAUC to 1e-4).
    Batch building is timed apart from the metrics; RecBole's data preparation is reported but not compared.
    `--micro` also times the AUC alternatives on one block (`lmrec.bench.eval_micro`).

Why
    Evaluation runs every validation epoch on every user and item; it must cost little more than the top-k any
    evaluation needs. Quick: 2,000 users x 1,000 items, 60,000 interactions, blocks of 512.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import compose
from lmrec.bench.registry import Benchmark, Context, Result, importable, register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run eval`."""
    parser.add_argument("--shape", choices=("ml-20m", "ml-1m"), default="ml-20m", help="users x items x rows")
    parser.add_argument("--dim", type=int, default=64, help="embedding size (64)")
    parser.add_argument("--block", type=int, default=1024, help="users per evaluation block (1024)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--recbole-users", type=int, default=None, help="RecBole: only the first N test users")
    parser.add_argument("--micro", action="store_true", help="also time AUC alternatives on one block")
    parser.add_argument("overrides", nargs="*", help="lmrec-train overrides of the task, e.g. task.ties=first")


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    import numpy as np
    import torch

    from lmrec.bench.eval_lmrec import build_splits, run_lmrec, summarize
    from lmrec.bench.references import describe
    from lmrec.bench.synthetic.eval_data import SHAPES, make_interactions
    from lmrec.cli.components import build_data

    users, items, rows, min_per_user = (2_000, 1_000, 60_000, 20) if ctx.quick else SHAPES[args.shape]
    block = 512 if ctx.quick else args.block
    torch.set_num_threads(1 if ctx.quick else args.threads)
    task, _ = build_data(compose(["task=ranking", *args.overrides], ctx.workdir, ctx.cache_dir))
    ks = tuple(task.ks)
    u, i = make_interactions(users, items, rows, min_per_user, args.seed)
    splits, split = build_splits(u, i, users, items, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    user_emb = torch.randn(users, args.dim, generator=gen) / math.sqrt(args.dim)
    item_emb = torch.randn(items, args.dim, generator=gen)
    lm = run_lmrec(task, splits, user_emb, item_emb, block)
    s = lm["seconds"]
    figures: dict[str, Any] = {
        "users": users,
        "items": items,
        "interactions": len(u),
        "test_users": lm["test_users"],
        "blocks": lm["blocks"],
        "seconds": s,
        "metrics": lm["metrics"],
        "lmrec_over_bare": s["lmrec"] / s["bare"],
        "inplace_over_bare": s["lmrec, inplace"] / s["bare"],
        "no_auc_over_bare": s["lmrec, no AUC"] / s["bare"],
        "per_user_overhead": s["lmrec, per-user rows"] / s["lmrec"] - 1,
        "per_user_rows": lm["rows_kept"],
    }
    direct = summarize(lm["per_user"], None)
    checks = {
        "accumulator_equals_per_user_means": all(
            abs(v - direct[k]) < 1e-6 for k, v in lm["metrics"].items() if k in direct
        )
    }
    result: Result = {"reference": describe("recbole")}
    if importable("recbole"):
        from lmrec.bench.eval_recbole import compare, run_recbole

        rb = run_recbole(u, i, split, user_emb, item_emb, ks, block, args.recbole_users, check=ctx.quick)
        scale = rb["users"] / lm["test_users"]  # RecBole may have run on a prefix of the users
        r = rb["seconds"]
        metric_s = r["score + mask"] + r["collect"] + r["evaluate"]
        diffs = compare(summarize(lm["per_user"], rb.pop("lmrec_user_ids")), rb, ks)
        figures["recbole"] = {
            "users": rb["users"],
            "seconds": r,
            "data_preparation_s": rb["data_preparation_s"],
            "metrics": rb["metrics"],
            **diffs,
            "recbole_over_lmrec": metric_s / (s["lmrec"] * scale),
            "recbole_over_lmrec_with_batches": (metric_s + r["collate"]) / ((s["lmrec"] + s["build blocks"]) * scale),
        }
        checks["metrics_agree_with_recbole"] = diffs["max_topk_diff"] <= 1e-6 and diffs["gauc_diff"] <= 1e-4
        if "same_as_trainer_evaluate" in rb:
            checks["recbole_timed_loop_equals_trainer_evaluate"] = rb["same_as_trainer_evaluate"]
    if args.micro:
        from lmrec.bench.eval_micro import run_micro

        figures["micro"] = run_micro(task, splits, user_emb, item_emb, block)
    per_user = np.bincount(u, minlength=users)
    result.update(
        figures=figures,
        checks=checks,
        facts={
            "interactions_per_user": {
                "mean": float(per_user.mean()),
                "median": float(np.median(per_user)),
                "max": int(per_user.max()),
            }
        },
        options={
            "shape": "quick" if ctx.quick else args.shape,
            "dim": args.dim,
            "block": block,
            "seed": args.seed,
            "ks": list(ks),
            "recbole_users": args.recbole_users,
            "overrides": list(args.overrides),
        },
    )
    return result


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        f = r["figures"]
        s = f.get("seconds", {})
        rb = f.get("recbole", {})
        rows.append(
            [
                tables.run_cell(r),
                f"{tables.cell(f.get('users'))} × {tables.cell(f.get('items'))}",
                tables.cell(f.get("test_users")),
                tables.cell(s.get("bare"), ".2f"),
                tables.cell(s.get("lmrec"), ".2f"),
                tables.ratio(f.get("lmrec_over_bare")),
                tables.ratio(f.get("inplace_over_bare")),
                tables.ratio(f.get("no_auc_over_bare")),
                tables.cell(100 * f["per_user_overhead"], "+.1f") + " %" if "per_user_overhead" in f else "—",
                tables.cell(rb.get("users")),
                tables.ratio(rb.get("recbole_over_lmrec"), ".1f"),
            ]
        )
    header = [
        "run",
        "users × items",
        "test users",
        "bare s",
        "lmrec s",
        "lmrec / bare",
        "inplace / bare",
        "no AUC / bare",
        "per-user output",
        "RecBole users",
        "RecBole / lmrec",
    ]
    return tables.table(header, rows, "llrrrrrrrrr")


register(
    Benchmark(
        name="eval",
        description="Full-ranking evaluation speed: lmrec's metrics vs bare matmul+top-k, and vs RecBole 1.2.1",
        run=run,
        add_arguments=add_arguments,
        table=table,
        reference=("recbole",),
        module=__name__,
    )
)
