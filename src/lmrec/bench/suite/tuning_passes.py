"""How a tuned step runs its encoder: length-sorted chunks, and cached frozen layers, each against the plain way.

What is measured
    On the ranking task at the default max length (128) and `--batch-size` rows (256), each pair built side by
    side in this process, one untimed warm-up step then the fastest of `--repeats` timed steps:
      chunks  LoRA (`model/tuning=lora`), the step's distinct items in one pass padded to its longest text, against
              lmrec's length-sorted chunks of `model.encoder.batch_size` (128) texts;
      cache   partial tuning with 5 (then 3, the default) of MiniLM's 6 layers frozen, every layer run each step
              (`model.tuning.method.cache_frozen_layers=false`) against the frozen layers' output cached once; the
              one-off time to fill the cache is reported on its own.
    The ratio is before / after.

Why
    Padding a random thousand items to their longest text, and re-running frozen layers, were most of a tuned
    step's work. Quick: a tiny random 6-layer BERT, the first 8 users, batches of 16.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from lmrec.bench import tables
from lmrec.bench.registry import Benchmark, Context, Result, register

#: name -> (overrides, overrides of the "before" model, or None to time "before" as one padded pass)
CONFIGS = {
    "lora: one padded pass -> length-sorted chunks": (["model/tuning=lora"], None),
    "partial 5/6 frozen: all layers -> cached bottom": (
        ["model/tuning=partial", "model.tuning.method.frozen_layers=5"],
        ["model.tuning.method.cache_frozen_layers=false"],
    ),
    "partial 3/6 frozen: all layers -> cached bottom": (
        ["model/tuning=partial", "model.tuning.method.frozen_layers=3"],
        ["model.tuning.method.cache_frozen_layers=false"],
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run tuning_passes`."""
    parser.add_argument("--batch-size", type=int, default=256, help="rows per step (256)")
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per variant, the fastest kept (2)")
    parser.add_argument("overrides", nargs="*", help="more lmrec-train overrides, e.g. task.loss=bpr")


def one_pair(
    overrides: list[str], before: list[str] | None, args: argparse.Namespace, ctx: Context, batch_size: int
) -> dict[str, Any]:
    """Before and after of one change, each built and timed in this process."""
    from lmrec.bench.models import configured_optimizer, timed_step
    from lmrec.bench.tuning_common import build

    seconds: dict[str, Any] = {}
    for variant in ("before", "after"):
        extra = before if variant == "before" and before else []
        model, batch = build(["task=ranking", *overrides, *extra, *args.overrides], ctx, 128, batch_size)
        (encoder,) = model.trainable_encoders()
        if variant == "before" and before is None:
            encoder.chunk_size = 10**9  # every distinct item of the step in one padded pass
        if encoder.cached_depth is not None:
            began = time.perf_counter()
            encoder._fill_bottom_cache()
            seconds["cache_fill_s"] = time.perf_counter() - began
        optimizer = configured_optimizer(model)
        timed_step(model, batch, optimizer)  # warm-up
        seconds[f"{variant}_s"] = min(timed_step(model, batch, optimizer)[0] for _ in range(args.repeats))
        del model, optimizer
    seconds["speedup"] = seconds["before_s"] / seconds["after_s"]
    return seconds


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    batch_size = 16 if ctx.quick else args.batch_size
    figures = {}
    for name, (overrides, before) in CONFIGS.items():
        figures[name] = one_pair(overrides, before, args, ctx, batch_size)
        ctx.log(f"{name}: {figures[name]['before_s']:.2f} s -> {figures[name]['after_s']:.2f} s per step")
    return {
        "figures": figures,
        "options": {"batch_size": batch_size, "repeats": args.repeats, "overrides": list(args.overrides)},
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        for i, (name, f) in enumerate(r["figures"].items()):
            rows.append(
                [
                    tables.run_cell(r) if i == 0 else "",
                    name,
                    tables.cell(f.get("before_s"), ".2f"),
                    tables.cell(f.get("after_s"), ".2f"),
                    f"**{tables.ratio(f.get('speedup'))}**",
                    tables.cell(f.get("cache_fill_s"), ".1f"),
                ]
            )
    header = ["run", "change", "before (s / step)", "after (s / step)", "speed-up", "cache fill s (once)"]
    return tables.table(header, rows, "llrrrr")


register(
    Benchmark(
        name="tuning_passes",
        description="A tuned step's encoder passes: padded pass vs length-sorted chunks, all layers vs cached bottom",
        run=run,
        add_arguments=add_arguments,
        table=table,
        module=__name__,
    )
)
