"""Rating baseline: Surprise's SVD (default parameters) on lmrec's exported split, scored like lmrec's test RMSE.

What is measured
    lmrec    `lmrec-train logger=csv export_split=true [overrides]` (the default rating model, or what the overrides
             say): its test RMSE and MAE, and the exact split it wrote to <run>/split/{train,val,test}.csv with the
             original user/item ids. `--lmrec-run DIR` reuses a run folder that has both instead of training.
    SVD      `surprise.SVD()` with its default parameters (100 factors, 20 epochs, lr 0.005, reg 0.02, biases) and
             `random_state=--seed`, trained on train.csv only (SVD's defaults need no tuning set) with
             `Reader(rating_scale=(0.5, 5.0))`, scored on the same test rows. Test pairs whose user or item is absent
             from train.csv get SVD's own estimate (the global mean plus whichever bias is known); their count is
             recorded. Runs where scikit-surprise is installed; otherwise lmrec's side alone is recorded.

Why
    lmrec's rating model should be judged against the classic matrix-factorisation baseline on exactly the same
    rows. Quick: the first 20 users, one epoch, a tiny random BERT.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, run_train, tiny_encoder_overrides
from lmrec.bench.registry import Benchmark, Context, Result, importable, register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run surprise`."""
    parser.add_argument("--seed", type=int, default=0, help="SVD random_state (0)")
    parser.add_argument("--lmrec-run", type=Path, default=None, help="a rating run folder with split/ and metrics.json")
    parser.add_argument("overrides", nargs="*", help="lmrec-train overrides of lmrec's run (e.g. seed=1)")


def svd_scores(split: Path, seed: int) -> dict[str, Any]:
    """RMSE and MAE of Surprise's default SVD on `split`'s test.csv, trained on its train.csv."""
    import pandas as pd
    from surprise import SVD, Dataset, Reader, accuracy

    columns = ["user", "item", "rating"]
    train = pd.read_csv(split / "train.csv")[columns]
    test = pd.read_csv(split / "test.csv")[columns]
    algo = SVD(random_state=seed)
    start = time.perf_counter()
    algo.fit(Dataset.load_from_df(train, Reader(rating_scale=(0.5, 5.0))).build_full_trainset())
    fit_s = time.perf_counter() - start
    predictions = algo.test(list(test.itertuples(index=False, name=None)))
    cold = int((~test["user"].isin(train["user"]) | ~test["item"].isin(train["item"])).sum())
    return {
        "rmse": accuracy.rmse(predictions, verbose=False),
        "mae": accuracy.mae(predictions, verbose=False),
        "fit_s": fit_s,
        "train_rows": len(train),
        "test_rows": len(test),
        "test_rows_cold": cold,
    }


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    from lmrec.bench.references import describe

    facts: dict[str, Any] = {}
    if args.lmrec_run is not None:
        run_dir = Path(args.lmrec_run)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        facts["lmrec_run"] = "given (--lmrec-run)"
    else:
        extra = [*QUICK_DATA, "trainer.max_epochs=1", *tiny_encoder_overrides(ctx.workdir)] if ctx.quick else []
        cache = [f"paths.cache_dir={ctx.cache_dir}"] if ctx.cache_dir else []
        job = run_train(["export_split=true", *cache, *extra, *args.overrides], ctx.workdir / "rating").check()
        run_dir, metrics = job.run_dir, job.metrics
    split = run_dir / "split"
    if not (split / "train.csv").is_file() or "test/rmse" not in metrics:
        raise ValueError(f"{run_dir} needs split/train.csv and a test/rmse: a rating run with export_split=true")
    figures: dict[str, Any] = {"lmrec": {"rmse": metrics["test/rmse"], "mae": metrics["test/mae"]}}
    if importable("scikit-surprise"):
        figures["svd"] = svd_scores(split, args.seed)
        figures["lmrec_minus_svd_rmse"] = figures["lmrec"]["rmse"] - figures["svd"]["rmse"]
        facts["lower_rmse"] = "lmrec" if figures["lmrec_minus_svd_rmse"] < 0 else "SVD"
    return {
        "figures": figures,
        "reference": describe("scikit-surprise"),
        "facts": facts,
        "options": {"seed": args.seed, "overrides": list(args.overrides)},
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        f = r["figures"]
        svd = f.get("svd", {})
        rows.append(
            [
                tables.run_cell(r),
                f"Surprise `SVD()` (seed {r.get('options', {}).get('seed', 0)})",
                tables.cell(svd.get("rmse"), ".4f"),
                tables.cell(svd.get("mae"), ".4f"),
            ]
        )
        rows.append(
            [
                "",
                r.get("facts", {}).get("lmrec_model", "lmrec (default rating model)"),
                f"**{tables.cell(tables.get(f, 'lmrec.rmse'), '.4f')}**",
                f"**{tables.cell(tables.get(f, 'lmrec.mae'), '.4f')}**",
            ]
        )
    return tables.table(["run", "model", "test RMSE", "test MAE"], rows, "llrr")


register(
    Benchmark(
        name="surprise",
        description="Rating baseline: Surprise's default SVD on lmrec's exported split, against lmrec's test RMSE",
        run=run,
        add_arguments=add_arguments,
        table=table,
        reference=("scikit-surprise",),
        module=__name__,
    )
)
