"""Encoder tuning: peak memory and time per training step, per tuning mode.

What is measured
    `--steps` training steps (forward, backward, the configured optimizer) of the rating model with a text item
    tower tuned by each mode (`--modes`: full, partial, lora, adapter, ia3; `model/tuning=<mode>`), MiniLM at max
    length 32, batch 1024, no gradient checkpointing, each mode in a fresh process: peak resident memory (CPU) or
    peak allocated memory (GPU). Step memory = the peak during the steps minus the memory in use before them
    (weights, data): activations, gradients and optimizer state (and, for `partial`, its layer cache). The ratio
    is each mode / full fine-tuning; also trainable parameters and the fastest step.

Why
    Which tuning mode fits a machine, and what each costs per step. Quick: full and lora on a tiny random BERT,
    the first 8 users, batches of 64, one step, in this process (so peaks are not isolated).
"""

from __future__ import annotations

import argparse
from typing import Any

from lmrec.bench import tables
from lmrec.bench.registry import Benchmark, Context, Result, register

MODES = ("full", "partial", "lora", "adapter", "ia3")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run tuning_memory`."""
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated tuning modes")
    parser.add_argument("--steps", type=int, default=2, help="training steps per mode, the fastest reported (2)")
    parser.add_argument("--batch-size", type=int, default=1024)


def worker(mode: str, steps: int, batch_size: int, workdir: str, cache_dir: str | None, quick: bool) -> dict[str, Any]:
    """One mode in this (fresh) process: memory before and at the peak of its steps, trainable parameters."""
    from pathlib import Path

    import torch

    from lmrec.bench.models import configured_optimizer, timed_step
    from lmrec.bench.registry import Context
    from lmrec.bench.tuning_common import build
    from lmrec.runtime.resources import peak_memory_mb

    ctx = Context(quick=quick, workdir=Path(workdir), cache_dir=Path(cache_dir) if cache_dir else None)
    model, batch = build(["task=rating", f"model/tuning={mode}"], ctx, batch_size=batch_size)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    batch = {k: v.to(device) for k, v in batch.items()}
    optimizer = configured_optimizer(model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = peak_memory_mb(device) if device.type == "cpu" else torch.cuda.memory_allocated(device) / 2**20
    seconds = [timed_step(model, batch, optimizer)[0] for _ in range(steps)]
    peak = peak_memory_mb(device)
    return {
        "peak_mb": peak,
        "before_mb": before,
        "step_mb": peak - before,
        "trainable": int(model.parameter_counts()["trainable"]),
        "s_per_step": min(seconds),
    }


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    from lmrec.bench.child import call

    modes = ["full", "lora"] if ctx.quick else args.modes.split(",")
    steps, batch_size = (1, 64) if ctx.quick else (args.steps, args.batch_size)
    figures: dict[str, dict] = {}
    for mode in modes:
        kwargs = {
            "mode": mode,
            "steps": steps,
            "batch_size": batch_size,
            "workdir": str(ctx.workdir),
            "cache_dir": str(ctx.cache_dir) if ctx.cache_dir else None,
            "quick": ctx.quick,
        }
        figures[mode] = call("lmrec.bench.suite.tuning_memory:worker", kwargs, fresh=not ctx.quick)
        ctx.log(f"{mode}: step memory {figures[mode]['step_mb']:.0f} MB, {figures[mode]['s_per_step']:.2f} s/step")
    if "full" in figures:
        for row in figures.values():
            row["step_mb_vs_full"] = row["step_mb"] / max(figures["full"]["step_mb"], 1e-9)
            row["peak_mb_vs_full"] = row["peak_mb"] / figures["full"]["peak_mb"]
    return {
        "figures": figures,
        "facts": {"fresh_processes": not ctx.quick},
        "options": {"modes": modes, "steps": steps, "batch_size": batch_size},
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        for i, (mode, f) in enumerate(r["figures"].items()):
            rows.append(
                [
                    tables.run_cell(r) if i == 0 else "",
                    mode,
                    tables.cell(f.get("trainable")),
                    tables.cell(f.get("step_mb"), ",.0f"),
                    tables.ratio(f.get("step_mb_vs_full")),
                    tables.cell(f.get("peak_mb"), ",.0f"),
                    tables.cell(f.get("s_per_step"), ".1f"),
                ]
            )
    header = ["run", "mode", "trainable parameters", "step memory MB", "vs full", "peak RSS MB", "s / step"]
    return tables.table(header, rows, "llrrrrr")


register(
    Benchmark(
        name="tuning_memory",
        description="Encoder tuning modes (full, partial, LoRA, adapter, IA3): memory and time per training step",
        run=run,
        add_arguments=add_arguments,
        table=table,
        module=__name__,
    )
)
