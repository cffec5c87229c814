"""What data-parallel training costs on CPU, and how fast training runs on a GPU: figures to size runs with.

CPU (always), on a warm cache, the same job in this invocation, one process after the other:

    lmrec-train trainer=default trainer.max_epochs=E ~callbacks.early_stopping [overrides]   # 1 process
    lmrec-train trainer=ddp_sim trainer.max_epochs=E ~callbacks.early_stopping [overrides]   # 2 processes

each with `+callbacks.fit_timer._target_=lmrec.bench.fit_timer.FitTimer`, which writes each epoch's training time
(validation excluded). A first untimed run fills the caches. For each run: wall time of the whole command
(start-up, data, training, test), the median training time of an epoch after the first, training rows per second;
the two kinds of run alternate `--repeats` times and their medians give the 2-process / 1-process ratios. Each DDP
process gets half of the cores and half of the rows, so an epoch has half the optimizer steps at twice the
effective batch, which is why test metrics differ between the two (evaluation itself is exact under DDP).

GPU (`--gpu`; skipped, with a note, without CUDA): `trainer=gpu` once per `--mode LABEL:OVERRIDES`, e.g.
`--mode frozen:` and `--mode "lora:model/tuning=lora"`: training rows per second and peak GPU memory.

Why
    Users size sweeps and clusters from these numbers: whether DDP pays on their machine, and how many rows per
    second a GPU trains for each tuning mode. Quick: the first 20 users, a tiny random BERT, one epoch, one run of
    each kind, no warm-up run.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, run_train, shown, tiny_encoder_overrides
from lmrec.bench.registry import Benchmark, Context, Result, register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run ddp`."""
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per run (5)")
    parser.add_argument("--repeats", type=int, default=3, help="CPU: runs of each kind, alternating (3)")
    parser.add_argument("--gpu", action="store_true", help="also measure GPU throughput per --mode")
    parser.add_argument(
        "--mode", action="append", default=None, help="LABEL:OVERRIDES for the GPU part, repeatable (default 'frozen:')"
    )
    parser.add_argument("--skip-cpu", action="store_true", help="only the GPU part")
    parser.add_argument("overrides", nargs="*", help="lmrec-train overrides for every run, e.g. torch_threads=1")


def run_job(label: str, overrides: list[str], ctx: Context, epochs: int) -> dict[str, Any]:
    """One lmrec-train process with a fixed number of epochs: its wall time, epoch times and metrics."""
    timing = ctx.workdir / f"{label}.timing.json"
    fixed = [
        f"trainer.max_epochs={epochs}",
        f"trainer.min_epochs={epochs}",
        "~callbacks.early_stopping",
        "~callbacks.rich_progress_bar",
        "+callbacks.fit_timer._target_=lmrec.bench.fit_timer.FitTimer",
        f"+callbacks.fit_timer.path={timing}",
        f"paths.cache_dir={ctx.workdir / 'cache'}",
    ]
    ctx.log(f"[{label}] {' '.join(overrides)}")
    job = run_train([*fixed, *overrides], ctx.workdir / label).check()
    times = json.loads(timing.read_text())
    rows = job.run["data_stats"]["train_interactions"]
    steady = times["epoch_train_s"][1:] or times["epoch_train_s"]
    epoch_s = statistics.median(steady)
    return {
        "wall_s": job.wall_s,
        "epoch_train_s": times["epoch_train_s"],
        "median_epoch_train_s": epoch_s,
        "rows_per_epoch": rows,
        "rows_per_s": rows / epoch_s,
        "processes": times["world_size"],
        "batches_per_rank": times["batches_per_rank"],
        "cuda_peak_mb": (times["cuda_peak_bytes"] or 0) / 1e6,
        "test_metrics": {k: v for k, v in job.metrics.items() if k.startswith("test/")},
        "command": shown(job.command).replace(str(ctx.workdir), "<workdir>"),
    }


def cpu_part(ctx: Context, epochs: int, extra: list[str], repeats: int, warm_up: bool) -> dict[str, Any]:
    """1-process and 2-process runs alternate, so a slow spell of a shared machine hits both; medians compared."""
    if warm_up:
        run_job("warmup", ["trainer=default", *extra], ctx, 1)
    runs: dict[str, list[dict]] = {"1proc": [], "2proc": []}
    for i in range(repeats):
        runs["1proc"].append(run_job(f"cpu_1proc_{i}", ["trainer=default", *extra], ctx, epochs))
        runs["2proc"].append(run_job(f"cpu_2proc_{i}", ["trainer=ddp_sim", *extra], ctx, epochs))
    keys = ("wall_s", "median_epoch_train_s", "rows_per_s")
    medians = {kind: {k: statistics.median(r[k] for r in rs) for k in keys} for kind, rs in runs.items()}
    for kind, rs in runs.items():
        medians[kind]["batches_per_rank"] = rs[-1]["batches_per_rank"][-1]
        medians[kind]["processes"] = rs[-1]["processes"]
        medians[kind]["test_metrics"] = rs[-1]["test_metrics"]
    ratios = {
        "wall_2proc_over_1proc": medians["2proc"]["wall_s"] / medians["1proc"]["wall_s"],
        "epoch_2proc_over_1proc": medians["2proc"]["median_epoch_train_s"] / medians["1proc"]["median_epoch_train_s"],
    }
    commands = {kind: rs[-1].pop("command") for kind, rs in runs.items()}
    for rs in runs.values():
        for r in rs:
            r.pop("command", None)
    return {"figures": {"medians": medians, "ratios": ratios, "runs": runs}, "commands": commands}


def gpu_part(ctx: Context, epochs: int, extra: list[str], modes: list[str]) -> dict[str, Any]:
    """`trainer=gpu` runs per tuning mode (skipped, with a note, without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        ctx.log("GPU: no CUDA device here; GPU throughput not measured")
        return {"figures": {}, "skipped": "no CUDA device"}
    run_job("gpu_warmup", ["trainer=gpu", *extra], ctx, 1)
    results = {}
    for mode in modes:
        label, _, overrides = mode.partition(":")
        results[label] = run_job(f"gpu_{label}", ["trainer=gpu", *overrides.split(), *extra], ctx, epochs)
        results[label].pop("command")
    return {"figures": results, "device": torch.cuda.get_device_name(0)}


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    extra, epochs, repeats = list(args.overrides), args.epochs, args.repeats
    if ctx.quick:
        extra = [*QUICK_DATA, *tiny_encoder_overrides(ctx.workdir), *extra]
        epochs, repeats = 1, 1
    figures: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    if not args.skip_cpu:
        cpu = cpu_part(ctx, epochs, extra, repeats, warm_up=not ctx.quick)
        figures["cpu"], facts["commands"] = cpu["figures"], cpu["commands"]
    if args.gpu:
        gpu = gpu_part(ctx, epochs, extra, args.mode or ["frozen:"])
        figures["gpu"] = gpu["figures"]
        facts["gpu"] = gpu.get("device") or gpu.get("skipped")
    return {
        "figures": figures,
        "facts": facts,
        "options": {
            "epochs": epochs,
            "repeats": repeats,
            "overrides": list(args.overrides),
            "gpu_modes": args.mode or (["frozen:"] if args.gpu else []),
        },
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        medians = tables.get(r, "figures.cpu.medians", {})
        for kind, label in (("1proc", "1 process"), ("2proc", "2 processes")):
            m = medians.get(kind)
            if not m:
                continue
            metrics = m.get("test_metrics", {})
            rows.append(
                [
                    tables.run_cell(r) if kind == "1proc" else "",
                    label,
                    tables.cell(m.get("wall_s"), ".1f"),
                    tables.cell(m.get("median_epoch_train_s"), ".3f"),
                    tables.cell(m.get("rows_per_s"), ",.0f"),
                    tables.cell(m.get("batches_per_rank"), "d"),
                    tables.cell(metrics.get("test/rmse"), ".4f"),
                    tables.ratio(tables.get(r, "figures.cpu.ratios.wall_2proc_over_1proc")) if kind == "2proc" else "",
                    tables.ratio(tables.get(r, "figures.cpu.ratios.epoch_2proc_over_1proc")) if kind == "2proc" else "",
                ]
            )
    header = [
        "run",
        "processes",
        "wall s",
        "epoch s",
        "rows/s",
        "batches per rank per epoch",
        "test RMSE",
        "wall 2p / 1p",
        "epoch 2p / 1p",
    ]
    return tables.table(header, rows, "llrrrrrrr")


register(
    Benchmark(
        name="ddp",
        description="Data-parallel training on CPU (1 vs 2 processes, alternated), and GPU rows/s per tuning mode",
        run=run,
        add_arguments=add_arguments,
        table=table,
        gpu=False,
        module=__name__,
    )
)
