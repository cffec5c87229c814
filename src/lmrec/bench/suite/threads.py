"""Thread policy: one ranking training epoch (ID towers, the bundled data) idle and beside a busy neighbour.

What is measured
    Wall time of one training epoch (plain loop: batch, the task's loss, backward, the configured optimizer; no
    validation) of `task=ranking model=mf` (ID item and user towers, the default ranking objective) as lmrec-train
    builds it, for each torch thread count (`--threads`) and OpenMP wait policy (`--waits`), first on an otherwise
    idle machine, then while a CPU-bound neighbour runs: a second process doing float32 matrix products with
    torch's default thread count (what another default torch job on the same machine does). The benchmark starts
    and stops the neighbour itself. Each setting runs in a fresh worker process, because the OpenMP wait policy is
    read once, when torch loads its OpenMP runtime; the fastest of the timed epochs (after one warm-up epoch) is
    kept.

Why
    On a shared machine torch's default (one thread per core, with OpenMP threads that spin while they wait)
    collapses when a neighbour takes a core: each parallel region waits for its slowest thread. The ratio busy /
    idle per setting is what chose lmrec's default (`torch_threads: null`, `lmrec.sweeps.context.job_threads`).
    Quick: one thread, the default wait policy, one epoch on the first 20 users, in this process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from lmrec.bench import tables
from lmrec.bench.registry import Benchmark, Context, Result, register

#: The neighbour: another default torch job (all cores, spinning OpenMP threads). It says when it is running.
NEIGHBOUR = "import torch\na = torch.randn(1024, 1024)\na @ a\nprint('ready', flush=True)\nwhile True:\n    a @ a\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run threads`."""
    parser.add_argument("--batch-size", type=int, default=256, help="training batch size (256)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per setting, the fastest kept (3)")
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}", help="comma-separated torch thread counts")
    parser.add_argument("--waits", default="active,passive", help="OpenMP wait policies: active (default), passive")


def worker(threads: int, batch_size: int, epochs: int, workdir: str, cache_dir: str | None, quick: bool) -> dict:
    """One setting in this process: the fastest of `epochs` timed epochs after a warm-up epoch."""
    from pathlib import Path

    import torch

    from lmrec.bench.configured import QUICK_DATA, build_model, compose, prepared
    from lmrec.bench.models import configured_optimizer
    from lmrec.cli.components import seed_run

    torch.set_num_threads(threads)
    overrides = ["task=ranking", "model=mf", f"data.batch_size={batch_size}", *(QUICK_DATA if quick else ())]
    cfg = compose(overrides, Path(workdir), Path(cache_dir) if cache_dir else None)
    seed_run(cfg)
    task, datamodule = prepared(cfg)
    model = build_model(cfg, datamodule, task)
    model.train()
    optimizer = configured_optimizer(model)
    loader = datamodule.train_dataloader()
    times = []
    for _ in range(epochs + 1):  # the first epoch warms up the allocator and the thread pool
        start = time.perf_counter()
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            task.training_loss(model, batch).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return {"epoch_s": min(times[1:]), "epochs_s": times[1:], "steps": len(loader)}


def measure(threads: int, wait: str, args: argparse.Namespace, ctx: Context, epochs: int) -> dict:
    """One setting's worker (a fresh process in a full run, with the wait policy set)."""
    from lmrec.bench.child import call

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if wait == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    kwargs = {
        "threads": threads,
        "batch_size": args.batch_size,
        "epochs": epochs,
        "workdir": str(ctx.workdir),
        "cache_dir": str(ctx.cache_dir) if ctx.cache_dir else None,
        "quick": ctx.quick,
    }
    return call("lmrec.bench.suite.threads:worker", kwargs, fresh=not ctx.quick, env=env)


def busy_neighbour() -> subprocess.Popen:
    """Start the neighbour and return once it computes (its import alone takes a second or two)."""
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], stdout=subprocess.PIPE, text=True)
    neighbour.stdout.readline()
    return neighbour


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    threads = [1] if ctx.quick else [int(t) for t in args.threads.split(",")]
    waits = ["active"] if ctx.quick else args.waits.split(",")
    epochs = 1 if ctx.quick else args.epochs
    rows: list[dict[str, Any]] = []
    for count in threads:
        for wait in waits:
            idle = measure(count, wait, args, ctx, epochs)
            neighbour = busy_neighbour()
            try:
                busy = measure(count, wait, args, ctx, epochs)
            finally:
                neighbour.kill()
                neighbour.wait()
            rows.append(
                {
                    "threads": count,
                    "omp_wait": wait,
                    "idle_s": idle["epoch_s"],
                    "busy_s": busy["epoch_s"],
                    "busy_over_idle": busy["epoch_s"] / idle["epoch_s"],
                    "steps": idle["steps"],
                }
            )
            ctx.log(f"threads={count} wait={wait}: idle {idle['epoch_s']:.2f} s, busy {busy['epoch_s']:.2f} s")
    fastest = min(r["idle_s"] for r in rows)
    for r in rows:
        r["idle_over_fastest_idle"] = r["idle_s"] / fastest
    return {
        "figures": {"rows": [{k: v for k, v in r.items() if k != "omp_wait"} for r in rows]},
        "facts": {"omp_wait": [r["omp_wait"] for r in rows], "fresh_processes": not ctx.quick},
        "options": {"batch_size": args.batch_size, "epochs": epochs, "threads": threads, "waits": waits},
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    out = []
    for r in records:
        waits = tables.get(r, "facts.omp_wait", [])
        for i, row in enumerate(tables.get(r, "figures.rows", [])):
            out.append(
                [
                    tables.run_cell(r) if i == 0 else "",
                    tables.cell(row.get("threads")),
                    waits[i] if i < len(waits) else "—",
                    tables.cell(row.get("idle_s"), ".2f"),
                    tables.cell(row.get("busy_s"), ".2f"),
                    tables.ratio(row.get("busy_over_idle")),
                ]
            )
    return tables.table(["run", "threads", "OpenMP wait", "idle epoch s", "busy epoch s", "busy / idle"], out, "lrlrrr")


register(
    Benchmark(
        name="threads",
        description="Thread policy: a training epoch per torch thread count and OpenMP wait, idle vs busy neighbour",
        run=run,
        add_arguments=add_arguments,
        table=table,
        module=__name__,
    )
)
