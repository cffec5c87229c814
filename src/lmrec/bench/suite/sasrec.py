"""lmrec's SASRec (`experiment=sasrec`) against RecBole 1.2.1's SASRec on one identical temporal leave-one-out split.

What is measured
    Test NDCG@10 and Recall@10 per seed and their means, and the mean seconds of one training epoch of each side:
      lmrec    `lmrec-train experiment=sasrec task.mask_history=false model.head.biases=false seed=S ...` as a
               process (its run.json's seconds per epoch: training without validation);
      RecBole  its SASRec on lmrec's own split (`lmrec.bench.sasrec_recbole`), timed inside the same process,
               where RecBole is installed (`pip install --no-deps recbole==1.2.1 texttable colorama`).
    Both use RecBole's SASRec defaults (lmrec's dot head without biases, as RecBole's) and full ranking without
    masking the input history (RecBole's sequential evaluation does not mask).

Why
    A sequential model is only credible next to the reference implementation, on the same split, at the same
    cost. On two CPU cores a RecBole epoch takes about 230 s, so the converged 3-seed comparison is a GPU job
    (`--gpu --jobs 3`); `--max-epochs 2` gives the side-by-side epoch time. `--jobs N` runs N seeds at once, each
    in its own process (epoch times then include the sharing). Quick: the first 20 users, one epoch, seed 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, compose, run_train
from lmrec.bench.registry import Benchmark, Context, Result, importable, register

KEYS = ("ndcg@10", "recall@10", "epoch_s", "epochs")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run sasrec`."""
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=300, help="cap for both sides (RecBole's default: 300)")
    parser.add_argument("--patience", type=int, default=10, help="epochs without improvement before stopping (10)")
    parser.add_argument("--only", choices=("lmrec", "recbole"), default=None)
    parser.add_argument("--gpu", action="store_true", help="train both on the first CUDA GPU")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once, each in its own process")
    parser.add_argument("overrides", nargs="*", help="more lmrec-train overrides (lmrec's side, and the split)")


def run_lmrec(seed: int, max_epochs: int, patience: int, extra: list[str], gpu: bool, ctx: Context) -> dict:
    """lmrec's side of one seed: `lmrec-train experiment=sasrec ...` as a process."""
    overrides = [
        "experiment=sasrec",
        "task.mask_history=false",
        f"seed={seed}",
        f"trainer.max_epochs={max_epochs}",
        f"callbacks.early_stopping.patience={patience}",
        "model.head.biases=false",
        "callbacks.rich_progress_bar=null",
        *(["trainer=gpu", "trainer.precision=32-true"] if gpu else []),
        *extra,
    ]  # fp32 on the GPU, as RecBole
    job = run_train(overrides, ctx.workdir / f"lmrec-{seed}").check()
    return {
        "ndcg@10": job.metrics["test/ndcg@10"],
        "recall@10": job.metrics["test/recall@10"],
        "epochs": job.run["epochs"],
        "epoch_s": job.run["seconds_per_epoch"],
    }


def seeds_in_parallel(args: argparse.Namespace, ctx: Context) -> dict[str, dict]:
    """Each seed in its own `lmrec-bench run sasrec --seeds S` process, `--jobs` at a time; their figures merged."""

    def one(seed: int) -> dict:
        """One seed's `lmrec-bench run sasrec` process; its figures."""
        out = ctx.workdir / f"seed{seed}"
        command = [
            sys.executable,
            "-m",
            "lmrec.bench.cli",
            "run",
            "sasrec",
            "--seeds",
            str(seed),
            "--out",
            str(out),
            "--max-epochs",
            str(args.max_epochs),
            "--patience",
            str(args.patience),
            *(["--gpu"] if args.gpu else []),
            *(["--only", args.only] if args.only else []),
            *(["--quick"] if ctx.quick else []),
            *args.overrides,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"seed {seed} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        name = "sasrec.quick.json" if ctx.quick else "sasrec.json"
        return json.loads((out / name).read_text())["figures"]

    merged: dict[str, dict] = {"lmrec": {}, "recbole": {}}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for part in pool.map(one, args.seeds):
            for side in merged:
                merged[side].update(part.get(side, {}))
    return merged


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    from lmrec.bench.references import describe

    seeds, max_epochs = ([0], 1) if ctx.quick else (args.seeds, args.max_epochs)
    extra = [*QUICK_DATA, *args.overrides] if ctx.quick else list(args.overrides)
    recbole = args.only != "lmrec" and importable("recbole")
    figures: dict[str, Any] = {"lmrec": {}, "recbole": {}}
    if args.jobs > 1 and len(seeds) > 1:
        figures.update(seeds_in_parallel(args, ctx))
    else:
        split = None
        for seed in seeds:
            if recbole:
                from lmrec.bench.sasrec_recbole import lmrec_split, run_recbole

                if split is None:  # the seed drives neither the temporal split nor its order
                    split = lmrec_split(compose(["experiment=sasrec", *extra], ctx.workdir, ctx.cache_dir))
                figures["recbole"][str(seed)] = run_recbole(
                    split, seed, max_epochs, args.patience, ctx.workdir / f"rb{seed}", args.gpu
                )
            if args.only != "recbole":
                figures["lmrec"][str(seed)] = run_lmrec(seed, max_epochs, args.patience, extra, args.gpu, ctx)
            ctx.log(f"seed {seed}: " + json.dumps({side: f.get(str(seed)) for side, f in figures.items()}))
    means = {
        side: {k: statistics.mean(r[k] for r in runs.values()) for k in KEYS} for side, runs in figures.items() if runs
    }
    figures["means"] = means
    if len(means) == 2:
        lm, rb = means["lmrec"], means["recbole"]
        pairs = {"ndcg@10": "ndcg@10", "recall@10": "recall@10", "epoch_time": "epoch_s"}
        # a ratio over zero (an untrained quick run scores 0) is left out rather than recorded as infinite
        figures["ratios_lmrec_over_recbole"] = {name: lm[key] / rb[key] for name, key in pairs.items() if rb[key]}
    return {
        "figures": figures,
        "reference": describe("recbole") if args.only != "lmrec" else "not run (--only lmrec)",
        "options": {
            "seeds": seeds,
            "max_epochs": max_epochs,
            "patience": args.patience,
            "gpu": args.gpu,
            "jobs": args.jobs,
            "overrides": list(args.overrides),
        },
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        means = tables.get(r, "figures.means", {})
        for side in ("lmrec", "recbole"):
            m = means.get(side)
            if not m:
                continue
            seeds = ", ".join(sorted(tables.get(r, f"figures.{side}", {})))
            ratio = tables.get(r, "figures.ratios_lmrec_over_recbole", {}) if side == "lmrec" else {}
            rows.append(
                [
                    tables.run_cell(r) if side == "lmrec" else "",
                    side,
                    seeds,
                    tables.cell(m.get("ndcg@10"), ".4f"),
                    tables.cell(m.get("recall@10"), ".4f"),
                    tables.cell(m.get("epochs"), ".1f"),
                    tables.cell(m.get("epoch_s"), ".1f"),
                    tables.ratio(ratio.get("ndcg@10")),
                    tables.ratio(ratio.get("epoch_time"), ".3f"),
                ]
            )
    header = [
        "run",
        "side",
        "seeds",
        "test NDCG@10",
        "test Recall@10",
        "epochs",
        "s / epoch",
        "NDCG lmrec / RecBole",
        "epoch time lmrec / RecBole",
    ]
    return tables.table(header, rows, "lllrrrrrr")


register(
    Benchmark(
        name="sasrec",
        description="lmrec's SASRec vs RecBole 1.2.1's on one temporal leave-one-out split: NDCG@10, epoch time",
        run=run,
        add_arguments=add_arguments,
        table=table,
        reference=("recbole",),
        module=__name__,
    )
)
