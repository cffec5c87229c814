"""Encoder tuning, per training step: distinct-item encoding (lmrec) against encoding every row's item text.

What is measured
    One training step (forward, backward, optimizer step) of the LoRA-tuned text tower (`model/tuning=lora`,
    gradient checkpointing on in both paths so both fit in memory; MiniLM, max length 32, batch 1024) two ways:
      distinct  lmrec's way (`RecommenderModule.item_vectors`): each distinct item of the step is encoded once and
                its vector scattered back to every row (and history entry) that names it;
      per-row   every row's item text (and, with a history user tower, every history entry's) is encoded.
    Configurations (`--configs`): rating + id user tower, ranking + id user tower (the default ranking objective;
    add `task.loss=bpr` for the former 4-negative default), and rating + history user tower (the user is the mean
    of their training items' vectors, so a step needs the vectors of the history entries of the batch's distinct
    users, ~70k slots; ~470k if every row recomputed its user). Per-row encoding of that many texts does not fit in
    memory, so above `--max-per-row` slots the per-row time is EXTRAPOLATED from timed forward + backward passes
    over `--chunks` chunks of `--chunk` slots (time per chunk x number of chunks), for both slot counts.
    One untimed warm-up step, then the fastest of `--repeats` timed steps per path; the ratio is per-row / distinct.

Why
    Distinct-item encoding is what makes end-to-end tuning affordable; this says by how much, per configuration.
    Quick: a tiny random BERT, the first 8 users, batches of 64, extrapolation above 300 slots in chunks of 64.
"""

from __future__ import annotations

import argparse
from typing import Any

from lmrec.bench import tables
from lmrec.bench.registry import Benchmark, Context, Result, register

CONFIGS = {
    "rating+id": ["task=rating"],
    "ranking+id": ["task=ranking"],
    "rating+history": ["task=rating", "model/user_tower=history"],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run tuning_step`."""
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--repeats", type=int, default=1, help="timed steps per path, the fastest kept (1)")
    parser.add_argument("--max-per-row", type=int, default=8192, help="above this many slots, extrapolate per-row")
    parser.add_argument("--chunk", type=int, default=1024, help="slots per timed chunk when extrapolating (1024)")
    parser.add_argument("--chunks", type=int, default=3, help="timed chunks for the extrapolated per-row time (3)")
    parser.add_argument("overrides", nargs="*", help="more lmrec-train overrides, e.g. task.loss=bpr")


def one_config(name: str, args: argparse.Namespace, ctx: Context, batch_size: int, limits: tuple) -> dict[str, Any]:
    """Distinct and per-row step times of one configuration (extrapolated when too large)."""
    import torch

    from lmrec.bench.models import configured_optimizer, per_row_item_vectors, timed_step
    from lmrec.bench.tuning_common import build, seconds_per_chunk, slots

    max_per_row, chunk = limits
    overrides = [*CONFIGS[name], "model/tuning=lora", "model.tuning.gradient_checkpointing=true", *args.overrides]
    model, batch = build(overrides, ctx, batch_size=batch_size)
    optimizer = configured_optimizer(model)
    flat = slots(model, batch, distinct_users=True)
    distinct = int(len(torch.unique(flat)))

    def step(per_row: bool) -> float:
        """One timed step, per-row (patched on this model only) or lmrec's distinct-item way."""
        if per_row:
            model.item_vectors = lambda *groups: per_row_item_vectors(model, *groups)
        try:
            return timed_step(model, batch, optimizer)[0]
        finally:
            model.__dict__.pop("item_vectors", None)

    step(per_row=False)  # warm-up
    distinct_s = min(step(per_row=False) for _ in range(args.repeats))
    row: dict[str, Any] = {"item_slots": len(flat), "distinct_items": distinct, "distinct_s": distinct_s}
    if len(flat) <= max_per_row:
        per_row_s = min(step(per_row=True) for _ in range(args.repeats))
        row.update(per_row_s=per_row_s, speedup=per_row_s / distinct_s)
    else:
        chunk_s = seconds_per_chunk(model, flat, chunk, args.chunks)
        every_row = len(slots(model, batch, distinct_users=False))
        row.update(
            seconds_per_chunk=chunk_s,
            chunk_slots=chunk,
            per_row_s=chunk_s * len(flat) / chunk,
            speedup=chunk_s * len(flat) / chunk / distinct_s,
            item_slots_every_row_history=every_row,
            per_row_every_row_history_s=chunk_s * every_row / chunk,
            speedup_every_row_history=chunk_s * every_row / chunk / distinct_s,
        )
    ctx.log(f"{name}: slots {len(flat)}, distinct {distinct}, speed-up {row['speedup']:.2f}x")
    return row


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    batch_size, limits = (64, (300, 64)) if ctx.quick else (1024, (args.max_per_row, args.chunk))
    figures = {name: one_config(name, args, ctx, batch_size, limits) for name in args.configs}
    extrapolated = {name: "seconds_per_chunk" in row for name, row in figures.items()}
    return {
        "figures": figures,
        "facts": {"per_row_extrapolated": extrapolated},
        "options": {
            "configs": args.configs,
            "batch_size": batch_size,
            "repeats": args.repeats,
            "max_per_row": limits[0],
            "chunk": limits[1],
            "chunks": args.chunks,
            "overrides": list(args.overrides),
        },
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        extrapolated = tables.get(r, "facts.per_row_extrapolated", {})
        for i, (name, f) in enumerate(r["figures"].items()):
            note = " (extrapolated)" if extrapolated.get(name) else ""
            spec = ".1f" if extrapolated.get(name) else ".2f"
            rows.append(
                [
                    tables.run_cell(r) if i == 0 else "",
                    name,
                    tables.cell(f.get("item_slots")),
                    tables.cell(f.get("distinct_items")),
                    tables.cell(f.get("distinct_s"), ".1f"),
                    tables.cell(f.get("per_row_s"), ",.1f") + note,
                    f"**{tables.ratio(f.get('speedup'), spec)}**",
                ]
            )
            if f.get("item_slots_every_row_history"):
                rows.append(
                    [
                        "",
                        f"{name}, every row's history",
                        tables.cell(f["item_slots_every_row_history"]),
                        tables.cell(f.get("distinct_items")),
                        tables.cell(f.get("distinct_s"), ".1f"),
                        tables.cell(f.get("per_row_every_row_history_s"), ",.0f") + note,
                        f"**{tables.ratio(f.get('speedup_every_row_history'), '.1f')}**",
                    ]
                )
    header = ["run", "configuration", "item slots", "distinct items", "distinct s", "per-row s", "speed-up"]
    return tables.table(header, rows, "llrrrrr")


register(
    Benchmark(
        name="tuning_step",
        description="A LoRA-tuned training step: distinct-item encoding vs per-row encoding, per configuration",
        run=run,
        add_arguments=add_arguments,
        table=table,
        module=__name__,
    )
)
