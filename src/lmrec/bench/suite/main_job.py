"""Wall time and peak memory of the default main job (`lmrec-train`), with a cold and then a warm cache.

What is measured
    The default configuration (rating task, frozen all-MiniLM-L6-v2 text item tower, id user tower, dot head, CPU
    trainer with early stopping), run twice as separate processes:

        lmrec-train logger=csv hydra.run.dir=<workdir>/run1 paths.cache_dir=<workdir>/cache [overrides]   # cold
        lmrec-train logger=csv hydra.run.dir=<workdir>/run2 paths.cache_dir=<workdir>/cache [overrides]   # warm

    The cold run starts with an empty cache folder, so it builds the processed tables and encodes all item texts
    before training; the warm run finds both in the cache and only trains and tests. For each run:

    wall time   from process start to exit (interpreter start-up and imports included);
    peak RSS    two readings, the larger is compared with the target:
                - maxrss: each run is started through its own fresh Python wrapper, so the wrapper's
                  `getrusage(RUSAGE_CHILDREN).ru_maxrss` is the exact peak of the largest process of that run;
                - tree (with psutil): the sum of RSS over the run's process tree, polled every 0.1 s, which also
                  covers data-loader workers but can miss a peak shorter than the poll interval.

    Both are compared with the targets (cold <= 600 s, warm <= 180 s, peak RSS <= 3,000 MB, MB = 10^6 bytes), and
    each run's test metrics are read from its metrics.json.

Why
    "Runs on a laptop CPU in minutes, in a few GB" is a requirement of the project; this is its acceptance check.
    Quick: the first 20 users, one epoch, a tiny random BERT.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, run_train, shown, tiny_encoder_overrides
from lmrec.bench.registry import Benchmark, Context, Result, importable, register

MB = 1_000_000
#: Runs the command given as arguments, then writes ru_maxrss (KiB on Linux) of its children to argv[1].
WRAPPER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
"""
TARGETS = {"cold_s": 600.0, "warm_s": 180.0, "peak_rss_mb": 3000.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run main_job`."""
    parser.add_argument("--strict", action="store_true", help="a missed target fails the run (exit 1)")
    parser.add_argument("overrides", nargs="*", help="more lmrec-train overrides for both runs, e.g. seed=1")


class TreePeak:
    """The largest sum of RSS seen over the wrapper's descendants (the wrapper is not the job)."""

    def __init__(self) -> None:
        self.peak = 0

    def __call__(self, process: Any) -> None:
        import psutil

        total = 0
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
        self.peak = max(self.peak, total)


def one_run(label: str, overrides: list[str], ctx: Context) -> dict[str, Any]:
    """One lmrec-train process in its wrapper: wall time, peak RSS, epochs, metrics."""
    import sys

    from lmrec.bench.record import load_average

    maxrss_file = ctx.workdir / f"{label}.maxrss"
    tree = TreePeak() if importable("psutil") else None
    before = load_average()
    run = run_train(
        overrides, ctx.workdir / label, wrapper=[sys.executable, "-c", WRAPPER, str(maxrss_file)], poll=tree
    ).check()
    maxrss = int(maxrss_file.read_text()) * 1024 if maxrss_file.is_file() else 0
    peak = max(maxrss, tree.peak if tree else 0)
    ctx.log(f"[{label}] {run.wall_s:.1f} s, peak RSS {peak / MB:.0f} MB")
    figures = {
        "wall_s": run.wall_s,
        "peak_rss_mb": peak / MB,
        "peak_rss_maxrss_mb": maxrss / MB,
        "epochs": run.run.get("epochs", 0),
        "seconds_in_run": run.run.get("seconds", 0.0),
        "metrics": {k: v for k, v in run.metrics.items() if isinstance(v, int | float)},
    }
    if tree is not None:
        figures["peak_rss_tree_mb"] = tree.peak / MB
    return {
        "figures": figures,
        "command": shown(run.command).replace(str(ctx.workdir), "<workdir>"),
        "load_average": [before, load_average()],
    }


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    cache = ctx.workdir / "cold-cache"  # always empty at the start: the cold run is what is measured
    extra = list(args.overrides)
    if ctx.quick:
        extra = [*QUICK_DATA, "trainer.max_epochs=1", *tiny_encoder_overrides(ctx.workdir), *extra]
    runs = {label: one_run(label, [f"paths.cache_dir={cache}", *extra], ctx) for label in ("cold", "warm")}
    checks = {}
    for label, r in runs.items():
        checks[f"{label}_time_target"] = r["figures"]["wall_s"] <= TARGETS[f"{label}_s"]
        checks[f"{label}_rss_target"] = r["figures"]["peak_rss_mb"] <= TARGETS["peak_rss_mb"]
    return {
        "figures": {label: r["figures"] for label, r in runs.items()},
        "checks": checks if args.strict else {},
        "facts": {
            "targets_met": checks,
            "commands": {label: r["command"] for label, r in runs.items()},
            "load_average_per_run": {label: r["load_average"] for label, r in runs.items()},
            "tree_rss": "psutil" if importable("psutil") else "not measured (psutil not installed)",
        },
        "options": {"targets": TARGETS, "overrides": list(args.overrides)},
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        for label in ("cold", "warm"):
            f = tables.get(r, f"figures.{label}", {})
            if not f:
                continue
            target = TARGETS[f"{label}_s"]
            ok = "✔" if f.get("wall_s", target + 1) <= target else "✘"
            rss = tables.cell(f.get("peak_rss_mb"), ",.0f")
            parts = (
                f"{tables.cell(f.get('peak_rss_maxrss_mb'), ',.0f')} / {tables.cell(f.get('peak_rss_tree_mb'), ',.0f')}"
            )
            metrics = f.get("metrics", {})
            rows.append(
                [
                    tables.run_cell(r) if label == "cold" else "",
                    label,
                    f"**{tables.cell(f.get('wall_s'), '.1f')}**",
                    f"≤ {target:.0f} s {ok}",
                    f"**{rss}** ({parts})",
                    tables.cell(f.get("epochs"), "d"),
                    tables.cell(f.get("seconds_in_run"), ".1f"),
                    tables.cell(metrics.get("test/rmse"), ".4f"),
                    tables.cell(metrics.get("test/auc"), ".4f"),
                ]
            )
    header = [
        "run",
        "cache",
        "wall s",
        "target",
        "peak RSS MB (maxrss / tree)",
        "epochs",
        "s inside run()",
        "test RMSE",
        "test AUC",
    ]
    return tables.table(header, rows, "llrlrrrrr")


register(
    Benchmark(
        name="main_job",
        description="The default lmrec-train job end to end, cold and warm cache: wall time and peak memory",
        run=run,
        add_arguments=add_arguments,
        table=table,
        optional=("psutil",),
        module=__name__,
    )
)
