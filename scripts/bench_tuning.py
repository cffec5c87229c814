"""End-to-end encoder tuning on the bundled data: distinct-item encoding vs per-row, and memory per tuning mode.

What is measured (all on ml-latest-small with the packaged all-MiniLM-L6-v2, batch size 1024, max length 32)

    step      One training step (forward, backward, AdamW step) of the LoRA-tuned text tower two ways:
              distinct  lmrec's way (`RecommenderModule.item_vectors`): each distinct item of the step is encoded
                        once and its vector scattered back to every row (and history entry) that names it;
              per-row   every row's item text (and, with a history user tower, every history entry's) is encoded.
              Configurations: rating + id user tower, ranking (BPR, 4 negatives) + id user tower, and rating +
              history user tower (the user is the mean of their training items' vectors, so a step needs the
              vectors of the history entries of the batch's ~400 distinct users, ~70k slots; ~470k if every row
              recomputed its user). Per-row encoding of that many texts does not fit in memory, so for that
              configuration the per-row time is EXTRAPOLATED from timed forward+backward passes over chunks of
              1024 of its slots (time per chunk x number of chunks), for both slot counts; the other
              configurations time both paths in full. Gradient checkpointing is on in every configuration so both
              paths fit in memory.
              1 untimed warm-up step, then `--repeats` timed steps per path; the ratio is per-row / distinct.
    memory    Peak resident memory (CPU) or peak allocated memory (GPU) of `--steps` training steps of the rating
              model for each tuning mode, each in a fresh process: the increase over the memory in use before
              the first step (weights, data) is the step's own cost: activations, gradients, optimizer state.
              The ratio is each mode / full fine-tuning.
    passes    How a tuned step runs its encoder, on the ranking task (4 negatives) at the default max length (128)
              and `--batch-size` rows (default 256), each pair built side by side in one process:
              chunks    LoRA, the step's distinct items in one pass padded to its longest text vs lmrec's
                        length-sorted chunks of `model.encoder.batch_size` (128) texts;
              cache     partial tuning with 5 (then 3, the default) of MiniLM's 6 layers frozen, every layer run
                        each step vs the frozen layers' output cached once (`cache_frozen_layers`); the one-off
                        time to fill the cache is reported on its own.
              1 untimed warm-up step, then the fastest of `--repeats` timed steps; ratio = before / after.

Usage
    python scripts/bench_tuning.py step   [--json out.json]
    python scripts/bench_tuning.py memory [--json out.json]
    python scripts/bench_tuning.py passes [--batch-size 256] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from benchutil import REPO, machine_info, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(REPO))

STEP_CONFIGS = {
    "rating+id": ["task=rating"],
    "ranking+id": ["task=ranking"],
    "rating+history": ["task=rating", "model/user_tower=history"],
}
MEMORY_MODES = ("full", "partial", "lora", "adapter", "ia3")
#: name -> (overrides, overrides of the "before" model, or None to time "before" as one padded pass)
PASS_CONFIGS = {
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


def build(overrides: list[str], cache_dir: Path, max_length: int = 32, batch_size: int = 1024):
    """Model and a training batch for the bundled data (by default batch size 1024 and texts cut at 32 tokens)."""
    from tests.helpers import built_model, compose_train

    out = cache_dir / "bench-out"
    overrides = [f"model.encoder.max_length={max_length}", f"data.batch_size={batch_size}", *overrides]
    cfg = compose_train(overrides, out, cache_dir)
    torch.manual_seed(0)
    model, datamodule = built_model(cfg)
    model.train()
    batch = next(iter(datamodule.train_dataloader()))
    return model, batch


def per_row_vectors(model, *groups: torch.Tensor) -> list[torch.Tensor]:
    """The baseline: the item tower on every slot, duplicates included."""
    return [model.item_tower(group.reshape(-1)).reshape(*group.shape, -1) for group in groups]


def timed_step(model, batch, optimizer, per_row: bool) -> float:
    original = model.item_vectors
    if per_row:
        model.item_vectors = lambda *groups: per_row_vectors(model, *groups)
    try:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model.task.training_loss(model, batch).backward()
        optimizer.step()
        return time.perf_counter() - start
    finally:
        model.item_vectors = original


def slots(model, batch, distinct_users: bool) -> torch.Tensor:
    """Every item slot of a step: rows, negatives and, with a history user tower, the history entries, either of
    every row (a per-row implementation) or of each distinct user of the batch once (one that shares users)."""
    items = [batch["items"].reshape(-1)]
    if "negatives" in batch:
        items.append(batch["negatives"].reshape(-1))
    if distinct_users:
        items.append(model.user_tower.lookup(batch["users"]).items)  # each distinct user's history once
    else:  # every row's history: look each row's user up on its own
        items += [model.user_tower.lookup(user.reshape(1)).items for user in batch["users"]]
    return torch.cat(items)


def seconds_per_chunk(model, flat: torch.Tensor, chunk: int, chunks: int) -> float:
    """Mean time of forward+backward of the item tower over `chunks` chunks of `chunk` slots."""
    times = []
    for start in range(0, chunks * chunk, chunk):
        items = flat[start : start + chunk]
        begin = time.perf_counter()
        vectors = model.item_tower(items)
        vectors.backward(torch.ones_like(vectors) / vectors.numel())
        times.append(time.perf_counter() - begin)
    model.zero_grad(set_to_none=True)
    return sum(times) / len(times)


def bench_step(args: argparse.Namespace) -> dict:
    results = {}
    for name in args.configs:
        overrides = [*STEP_CONFIGS[name], "model/tuning=lora", "model.tuning.gradient_checkpointing=true"]
        model, batch = build(overrides, args.cache_dir)
        optimizer = torch.optim.AdamW(model.parameter_groups(), lr=1e-4)
        flat = slots(model, batch, distinct_users=True)
        distinct = len(torch.unique(flat))
        timed_step(model, batch, optimizer, per_row=False)  # warm-up
        distinct_s = min(timed_step(model, batch, optimizer, per_row=False) for _ in range(args.repeats))
        row = {"item_slots": len(flat), "distinct_items": distinct, "distinct_seconds": distinct_s}
        if len(flat) <= args.max_per_row:
            per_row_s = min(timed_step(model, batch, optimizer, per_row=True) for _ in range(args.repeats))
            row |= {"per_row_seconds": per_row_s, "per_row_extrapolated": False, "speedup": per_row_s / distinct_s}
        else:
            chunk_s = seconds_per_chunk(model, flat, 1024, args.chunks)
            every_row = slots(model, batch, distinct_users=False)
            row |= {
                "per_row_extrapolated": True,
                "seconds_per_1024_slots": chunk_s,
                "per_row_seconds": chunk_s * len(flat) / 1024,
                "speedup": chunk_s * len(flat) / 1024 / distinct_s,
                "item_slots_every_row_history": len(every_row),
                "per_row_every_row_history_seconds": chunk_s * len(every_row) / 1024,
                "speedup_every_row_history": chunk_s * len(every_row) / 1024 / distinct_s,
            }
        results[name] = row
        note = " (extrapolated)" if row["per_row_extrapolated"] else ""
        print(
            f"{name:16s} slots {len(flat):6d}  distinct {distinct:5d}  distinct {distinct_s:7.1f} s  "
            f"per-row {row['per_row_seconds']:7.1f} s{note}  speed-up {row['speedup']:.2f}x",
            flush=True,
        )
        if "speedup_every_row_history" in row:
            print(
                f"{'':16s} with every row's history: slots {row['item_slots_every_row_history']}  per-row "
                f"{row['per_row_every_row_history_seconds']:.1f} s  speed-up {row['speedup_every_row_history']:.2f}x",
                flush=True,
            )
        del model, optimizer
    return results


def bench_passes(args: argparse.Namespace) -> dict:
    results = {}
    for name, (overrides, before_overrides) in PASS_CONFIGS.items():
        seconds = {}
        for variant in ("before", "after"):
            extra = before_overrides if variant == "before" and before_overrides else []
            model, batch = build(["task=ranking", *overrides, *extra], args.cache_dir, 128, args.batch_size)
            (encoder,) = model.trainable_encoders()
            if variant == "before" and before_overrides is None:
                encoder.chunk_size = 10**9  # every distinct item of the step in one padded pass
            fill = time.perf_counter()
            if encoder.cached_depth is not None:
                encoder._fill_bottom_cache()
                seconds["cache_fill"] = time.perf_counter() - fill
            optimizer = torch.optim.AdamW(model.parameter_groups(), lr=1e-4)
            timed_step(model, batch, optimizer, per_row=False)  # warm-up
            seconds[variant] = min(timed_step(model, batch, optimizer, per_row=False) for _ in range(args.repeats))
            del model, optimizer
        seconds["speedup"] = seconds["before"] / seconds["after"]
        results[name] = seconds
        fill = f"  (cache filled once in {seconds['cache_fill']:.1f} s)" if "cache_fill" in seconds else ""
        print(
            f"{name:50s} {seconds['before']:6.2f} s -> {seconds['after']:6.2f} s per step  "
            f"speed-up {seconds['speedup']:.2f}x{fill}",
            flush=True,
        )
    return results


def memory_worker(mode: str, steps: int, cache_dir: Path) -> dict:
    from lmrec.runtime.resources import peak_memory_mb

    model, batch = build(["task=rating", f"model/tuning={mode}"], cache_dir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    batch = {k: v.to(device) for k, v in batch.items()}
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=1e-4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = peak_memory_mb(device) if device.type == "cpu" else torch.cuda.memory_allocated(device) / 2**20
    seconds = [timed_step(model, batch, optimizer, per_row=False) for _ in range(steps)]
    peak = peak_memory_mb(device)
    counts = model.parameter_counts()
    return {
        "peak_mb": peak,
        "before_mb": before,
        "step_mb": peak - before,
        "trainable": counts["trainable"],
        "seconds_per_step": min(seconds),
    }


def bench_memory(args: argparse.Namespace) -> dict:
    results = {}
    for mode in MEMORY_MODES:
        command = [
            sys.executable,
            __file__,
            "memory-worker",
            "--mode",
            mode,
            "--steps",
            str(args.steps),
            "--cache-dir",
            str(args.cache_dir),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    for mode, row in results.items():
        row["step_mb_vs_full"] = row["step_mb"] / results["full"]["step_mb"]
        row["peak_mb_vs_full"] = row["peak_mb"] / results["full"]["peak_mb"]
        print(
            f"{mode:8s} trainable {row['trainable']:>11,d}  step memory {row['step_mb']:8.0f} MB "
            f"({row['step_mb_vs_full']:.2f}x full)  peak {row['peak_mb']:8.0f} MB ({row['peak_mb_vs_full']:.2f}x)  "
            f"{row['seconds_per_step']:.1f} s/step",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["step", "memory", "passes", "memory-worker"])
    parser.add_argument("--configs", nargs="+", choices=list(STEP_CONFIGS), default=list(STEP_CONFIGS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--chunks", type=int, default=3, help="timed chunks for the extrapolated per-row time")
    parser.add_argument("--max-per-row", type=int, default=8192, help="above this many slots, extrapolate per-row")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256, help="rows per step for `passes`")
    parser.add_argument("--mode", default="lora")
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".cache" / "lmrec")
    parser.add_argument("--json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.part == "memory-worker":
        print(json.dumps(memory_worker(args.mode, args.steps, args.cache_dir)))
        return
    parts = {"step": bench_step, "memory": bench_memory, "passes": bench_passes}
    results = parts[args.part](args)
    write_json(args.json, {"machine": machine_info(torch.get_num_threads()), "part": args.part, "results": results})


if __name__ == "__main__":
    main()
