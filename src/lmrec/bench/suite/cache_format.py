"""Should lmrec's processed-data cache keep its own Parquet files, or move to HF `datasets`' Arrow storage?

Why this exists
    `lmrec.data.processed` caches the processed tables (interactions, users, items) as three Parquet files plus
    `key.json`, sealed with a SHA-256 manifest; every cache hit checks every byte and then reads the files into
    pandas, because the datamodule works on pandas/numpy. `datasets` promises memory-mapped, zero-parse loading;
    this measures whether that promise survives lmrec's two constraints: the tables must end up as pandas frames,
    and a flipped byte must be detected whatever the format (so the lazy loader still reads every byte once).

What is measured
    The phases of `lmrec.bench.cache_phases` (writes, reads, checked and lazy hits, `import datasets`), each in a
    fresh process, writes and reads interleaved over `--repeats` (median kept, so a load change on a shared machine
    hits both formats); ratios are against the Parquet phase of the same kind ("datasets / parquet = 1.40x"). Then
    the untimed checks of `lmrec.bench.cache_check`. Files were just written, so reads are served from the page
    cache. Data: `lmrec.bench.synthetic.cache_tables` (`--shape 1m` and/or `20m`). Without `datasets` installed
    only the Parquet phases run (lmrec's side); the record then says the reference is not installed.
    Quick: the 1m shape at 1/500 of its size, one repeat, every phase in this process.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import shutil
import statistics
from pathlib import Path
from typing import Any

from lmrec.bench import tables
from lmrec.bench.registry import Benchmark, Context, Result, importable, register

#: phase -> the Parquet phase it is compared with
PHASES = {
    "parquet_write": "parquet_write",
    "datasets_write": "parquet_write",
    "parquet_read": "parquet_read",
    "parquet_read_verified": "parquet_read_verified",
    "datasets_load": "parquet_read",
    "datasets_load_verified": "parquet_read_verified",
    "datasets_read": "parquet_read",
    "datasets_read_verified": "parquet_read_verified",
}
FORMATS = ("parquet", "datasets")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run cache_format`."""
    parser.add_argument("--shape", choices=("1m", "20m"), action="append", help="1m and/or 20m (default: 20m)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per phase, median kept (3)")


def summarize(runs: list[dict]) -> dict[str, Any]:
    """Median seconds over repeats, the largest peak, and the parts' medians of one phase."""
    seconds = [r["seconds"] for r in runs]
    out: dict[str, Any] = {"seconds": statistics.median(seconds), "seconds_all": seconds}
    if "peak_rss_gb" in runs[0]:
        out["peak_rss_gb"] = max(r["peak_rss_gb"] for r in runs)
        out["rss_before_gb"] = runs[0]["rss_before_gb"]
        out["at_end"] = runs[-1]["at_end"]
        out["parts"] = {k: statistics.median(r["parts"][k] for r in runs) for k in runs[0]["parts"]}
    return out


def ratios(phases: dict[str, dict], disk: dict[str, dict]) -> dict[str, float]:
    """Each phase against the Parquet phase of its kind; disk and the with-import hit too."""
    out = {}
    for phase, baseline in PHASES.items():
        if phase in phases:
            out[f"{phase}_seconds"] = phases[phase]["seconds"] / phases[baseline]["seconds"]
            out[f"{phase}_peak_rss"] = phases[phase]["peak_rss_gb"] / max(phases[baseline]["peak_rss_gb"], 1e-9)
    if "datasets" in disk:
        out["disk"] = sum(disk["datasets"].values()) / sum(disk["parquet"].values())
        hit = phases["datasets_read_verified"]["seconds"] + phases["datasets_import"]["seconds"]
        out["hit_with_import_seconds"] = hit / phases["parquet_read_verified"]["seconds"]
    return out


def run_shape(shape: str, scale: float, repeats: int, workdir: Path, formats: tuple[str, ...], ctx: Context) -> dict:
    """Every phase of one shape (interleaved repeats), the disk sizes and the checks."""
    from lmrec.bench.cache_phases import WRITES, entry
    from lmrec.bench.child import call
    from lmrec.bench.synthetic.cache_tables import make_tables, scaled

    sizes = scaled(shape, scale)
    base = workdir / f"cache_format_{shape}"
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "source.pkl", "wb") as handle:
        pickle.dump(make_tables(sizes), handle, protocol=5)
    gc.collect()
    writes = [p for p in WRITES if p.split("_")[0] in formats]
    reads = [p for p in PHASES if p not in WRITES and p.split("_")[0] in formats]
    reads += ["datasets_import"] if "datasets" in formats else []
    runs: dict[str, list] = {p: [] for p in (*writes, *reads)}
    for repeat in range(repeats):  # interleaved, so a load change on a shared machine hits both formats
        for phase in writes:
            arguments = {"phase": phase, "base": str(base), "repeat": repeat}
            runs[phase].append(call("lmrec.bench.cache_phases:measure", arguments, fresh=not ctx.quick))
            if repeat:
                shutil.rmtree(entry(base, phase.split("_")[0], repeat))
    disk = {
        fmt: {
            str(p.relative_to(entry(base, fmt))): p.stat().st_size
            for p in sorted(entry(base, fmt).rglob("*"))
            if p.is_file()
        }
        for fmt in formats
    }
    for _ in range(repeats):
        for phase in reads:
            arguments = {"phase": phase, "base": str(base)}
            runs[phase].append(call("lmrec.bench.cache_phases:measure", arguments, fresh=not ctx.quick))
    checked = call("lmrec.bench.cache_check:check", {"base": str(base)}, fresh=not ctx.quick)
    shutil.rmtree(base, ignore_errors=True)
    phases = {p: summarize(r) for p, r in runs.items()}
    ctx.log(f"[{shape}] " + ", ".join(f"{p} {v['seconds']:.3f} s" for p, v in phases.items()))
    disk_bytes = {fmt: sum(files.values()) for fmt, files in disk.items()}
    figures = {
        **{k: v for k, v in sizes.items() if k != "half_stars"},
        "repeats": repeats,
        "phases": phases,
        "disk_bytes": disk_bytes,
        "ratios": ratios(phases, disk),
    }
    return {"figures": figures, "check": checked, "files": disk}


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    formats = FORMATS if importable("datasets") else ("parquet",)
    shapes = ["1m"] if ctx.quick else (args.shape or ["20m"])
    repeats, scale = (1, 1 / 500) if ctx.quick else (args.repeats, 1.0)
    results = {shape: run_shape(shape, scale, repeats, ctx.workdir, formats, ctx) for shape in shapes}
    reference: Any = "not installed"
    if "datasets" in formats:
        import datasets

        reference = {"name": "datasets", "version": datasets.__version__}
    checks = {
        f"{shape}_{fmt}_manifest_detects_flip": r["check"]["flipped_byte"][fmt]["manifest_detects"]
        for shape, r in results.items()
        for fmt in formats
    }
    checks.update(
        {
            f"{shape}_{fmt}_round_trip": not r["check"][fmt]["differences"]
            for shape, r in results.items()
            for fmt in formats
        }
    )
    return {
        "figures": {shape: r["figures"] for shape, r in results.items()},
        "reference": reference,
        "checks": checks,
        "facts": {shape: {"check": r["check"], "files": r["files"]} for shape, r in results.items()},
        "options": {"shapes": shapes, "repeats": repeats, "scale": scale},
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        for shape, f in sorted(r["figures"].items()):
            p, q = f.get("phases", {}), f.get("ratios", {})
            sec = lambda name, p=p: tables.cell(tables.get(p, f"{name}.seconds"), ".3f")  # noqa: E731
            gb = lambda name, p=p: tables.cell(tables.get(p, f"{name}.peak_rss_gb"), ".2f")  # noqa: E731
            disk = f.get("disk_bytes", {})
            rows.append(
                [
                    f"{tables.run_cell(r)}, {shape}",
                    tables.cell(f.get("interactions")),
                    f"{sec('parquet_read_verified')} / {sec('datasets_read_verified')}",
                    tables.ratio(q.get("datasets_read_verified_seconds")),
                    tables.ratio(q.get("hit_with_import_seconds")),
                    sec("datasets_load_verified"),
                    f"{sec('parquet_write')} ({gb('parquet_write')}) / "
                    f"{sec('datasets_write')} ({gb('datasets_write')})",
                    " / ".join(tables.cell(disk.get(fmt, None) and disk[fmt] / 1e6, ",.1f") for fmt in FORMATS),
                    sec("datasets_import"),
                ]
            )
    header = [
        "run, shape",
        "interactions",
        "checked hit s, parquet / datasets",
        "datasets / parquet",
        "with `import datasets`",
        "lazy checked hit s (datasets)",
        "write s (peak GB), parquet / datasets",
        "on disk MB, parquet / datasets",
        "`import datasets` s",
    ]
    return tables.table(header, rows, "lrlrrrllr")


register(
    Benchmark(
        name="cache_format",
        description="Processed-data cache: lmrec's Parquet entry vs HF datasets' Arrow storage (time, memory, disk)",
        run=run,
        add_arguments=add_arguments,
        table=table,
        reference=("datasets",),
        module=__name__,
    )
)
