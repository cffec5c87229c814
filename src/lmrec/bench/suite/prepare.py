"""Data preparation: MovieLens-1M-, MovieLens-20M- and Amazon-2023-sized data through lmrec's real pipeline.

What is measured
    Synthetic data in each release's exact format (`lmrec.bench.synthetic`) is written into a scratch folder; then
    `lmrec.data.processed.load_processed` (what `RecDataModule.prepare` calls) is timed on the source and options
    that `data=<config>` gives, built by `build_data` as lmrec-train builds them, with the root pointed there:

    ml-1m       `data=movielens_1m`: ratings.dat, movies.dat (latin-1), users.dat; 1,000,209 ratings;
    ml-20m      `data=movielens_20m data.source.max_user_tags=5`: ratings.csv, movies.csv, tags.csv; 20,000,263
                ratings and 465,564 tags;
    amazon2023  `data=amazon2023 data.split.strategy=temporal_loo`: 1M reviews + 100k items, JSONL.gz.

    cold    no processed cache: hash the inputs, read and check every file, build texts, split, write the Parquet
            cache entry;
    cached  the same call again: hash the inputs and read the cache entry.

    Each timing runs in a fresh Python process (imports outside the timing), so its peak RSS (ru_maxrss) is the
    preparation's alone. "Cold" means no lmrec cache; the files were just written, so the OS page cache holds them.
    Targets (a 2-core machine): ml-1m cold <= 20 s, cached <= 2 s; ml-20m cold <= 180 s, cached <= 20 s, peak RSS
    <= 6 GB; amazon2023 cold <= 60 s. Ratios below 1.0 meet them.

Why
    Every run calls this first; a cold preparation is what a new user waits for. Quick: every shape at a tiny size,
    in this process.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path
from typing import Any

from lmrec.bench import tables
from lmrec.bench.registry import Benchmark, Context, Result, register

CONFIGS = {
    "ml-1m": ["data=movielens_1m"],
    "ml-20m": ["data=movielens_20m", "data.source.max_user_tags=5"],
    "amazon2023": ["data=amazon2023", "data.source.progress=false", "data.split.strategy=temporal_loo"],
}
TARGETS = {
    "ml-1m": {"cold_s": 20.0, "cached_s": 2.0},
    "ml-20m": {"cold_s": 180.0, "cached_s": 20.0, "peak_rss_gb": 6.0},
    "amazon2023": {"cold_s": 60.0},
}
#: Full sizes, and the quick run's scale of each.
AMAZON = {"reviews": 1_000_000, "items": 100_000}
QUICK_SCALE = {"ml-1m": 1 / 500, "ml-20m": 1 / 2000, "amazon2023": 1 / 500}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run prepare`."""
    parser.add_argument("--shape", choices=sorted(CONFIGS), action="append", help="which data (default: all three)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the sizes (1: the releases')")
    parser.add_argument("--plain", action="store_true", help="Amazon files as .jsonl instead of .jsonl.gz")


def measure(shape: str, root: str, cache: str) -> dict[str, Any]:
    """One `load_processed` call in this (fresh) process: seconds, peak RSS, whether the cache hit, sizes."""
    from lmrec.bench.configured import compose
    from lmrec.cli.components import build_data
    from lmrec.data.processed import load_processed

    cfg = compose([*CONFIGS[shape], f"data.source.root={root}"], Path(cache).parent, Path(cache))
    _, datamodule = build_data(cfg)
    start = time.perf_counter()
    data = load_processed(
        datamodule.source, datamodule.cache_dir, datamodule.options, verify=datamodule.verify_checksums
    )
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "cache_hit": data.cache_hit,
        "users": data.num_users,
        "items": data.num_items,
        "interactions": len(data.interactions),
    }


def write_data(shape: str, root: Path, scale: float, plain: bool = False) -> dict[str, Any]:
    """The synthetic release files of `shape` at `scale` into `root`; the sizes written."""
    if shape == "amazon2023":
        from lmrec.bench.synthetic.amazon_files import write_category

        sizes = {k: max(int(v * scale), 300 if k == "items" else 2000) for k, v in AMAZON.items()}
        write_category(root, sizes["reviews"], sizes["items"], plain=plain)
        return sizes
    from lmrec.bench.synthetic.movielens_files import scaled, write_movielens

    sizes = scaled(shape, scale)
    write_movielens(shape, root, sizes)
    return sizes


def run_shape(shape: str, scale: float, plain: bool, ctx: Context) -> dict[str, Any]:
    """Cold then cached `load_processed` of one shape, with the ratios to its targets."""
    from lmrec.bench.child import call

    base = ctx.workdir / shape
    root, cache = base / "data", base / "cache"
    start = time.perf_counter()
    sizes = write_data(shape, root, scale, plain)
    ctx.log(f"[{shape}] wrote {sizes} in {time.perf_counter() - start:.1f} s")
    runs = {}
    for label in ("cold", "cached"):
        runs[label] = call(
            "lmrec.bench.suite.prepare:measure",
            {"shape": shape, "root": str(root), "cache": str(cache)},
            fresh=not ctx.quick,
        )
        if runs[label]["cache_hit"] != (label == "cached"):
            raise RuntimeError(f"[{shape}] the {label} run's cache_hit is {runs[label]['cache_hit']}")
        ctx.log(f"[{shape}] {label} {runs[label]['seconds']:.2f} s")
    target = TARGETS[shape]
    ratios = {
        f"{label}_over_target": runs[label]["seconds"] / target[f"{label}_s"]
        for label in runs
        if f"{label}_s" in target
    }
    if "peak_rss_gb" in target:
        ratios["peak_rss_over_target"] = max(r["peak_rss_gb"] for r in runs.values()) / target["peak_rss_gb"]
    written = {p.name: p.stat().st_size for p in sorted(root.iterdir())}
    for r in runs.values():
        r.pop("cache_hit")
    return {"sizes": sizes, "bytes": written, **runs, "ratios": ratios}


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    shapes = args.shape or sorted(CONFIGS)
    scales = {shape: QUICK_SCALE[shape] if ctx.quick else args.scale for shape in shapes}
    figures = {shape: run_shape(shape, scales[shape], args.plain, ctx) for shape in shapes}
    met = {f"{shape}_{k}": v <= 1.0 for shape, f in figures.items() for k, v in f["ratios"].items()}
    return {
        "figures": figures,
        "facts": {"targets": TARGETS, "targets_met": met, "fresh_processes": not ctx.quick},
        "options": {"shapes": shapes, "scale": "quick" if ctx.quick else args.scale},
    }


def rows_cell(sizes: dict[str, Any]) -> str:
    """The input rows of a shape, as the table shows them."""
    if "reviews" in sizes:
        return f"{tables.cell(sizes['reviews'])} + {tables.cell(sizes.get('items'))} items"
    return tables.cell(sizes.get("ratings"))


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        for shape in [s for s in CONFIGS if s in r["figures"]]:
            f, target = r["figures"][shape], TARGETS[shape]
            cold, cached = f.get("cold", {}), f.get("cached", {})
            peak = max(cold.get("peak_rss_gb") or 0, cached.get("peak_rss_gb") or 0) or None
            rows.append(
                [
                    tables.run_cell(r),
                    shape,
                    rows_cell(f.get("sizes", {})),
                    f"**{tables.cell(cold.get('seconds'), '.3g')} s**",
                    tables.cell(target.get("cold_s"), ".0f"),
                    f"**{tables.cell(cached.get('seconds'), '.3g')} s**",
                    tables.cell(target.get("cached_s"), ".0f"),
                    f"{tables.cell(peak, '.3g')} GB",
                ]
            )
    header = ["run", "data", "rows", "cold", "target s", "from cache", "target s", "peak RSS"]
    return tables.table(header, rows, "llrrrrrr")


register(
    Benchmark(
        name="prepare",
        description="Data preparation (load_processed), cold and cached: ML-1M, ML-20M and Amazon-2023 shapes",
        run=run,
        add_arguments=add_arguments,
        table=table,
        module=__name__,
    )
)
