"""`lmrec-bench`: list the registered benchmarks, run one into a JSON record, regenerate the docs' tables.

    lmrec-bench list                                   # every benchmark, what it measures, what it needs
    lmrec-bench run NAME [--quick] [--out DIR] [...]   # one record: docs/results/NAME.json by default
    lmrec-bench run NAME --help                        # what NAME measures, and its own options
    lmrec-bench tables [--check]                       # docs/benchmarks.md's tables from docs/results/*.json

A `--quick` run (a tiny slice, one epoch, few repeats: seconds) checks that a benchmark works; its record goes to
NAME.quick.json, so it never replaces a full result, and the tables ignore it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lmrec.bench import record as records
from lmrec.bench import registry, tables


def _log(message: str) -> None:
    print(f"[lmrec-bench] {message}", file=sys.stderr, flush=True)


def checkout_root(start: Path | None = None) -> Path:
    """The lmrec checkout holding the current directory (the folder with docs/benchmarks.md), else the current
    directory: where `docs/results` and `docs/benchmarks.md` are looked for."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "docs" / "benchmarks.md").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return here


def list_benchmarks() -> int:
    """`lmrec-bench list`: each benchmark's name, description and what it needs here."""
    found = registry.load_all()
    width = max(len(name) for name in found)
    for name, bench in found.items():
        print(f"{name:<{width}}  {bench.description}")
        print(f"{'':<{width}}  needs: {bench.needs()}")
    return 0


def run_parser(bench: registry.Benchmark) -> argparse.ArgumentParser:
    """The options of `lmrec-bench run NAME`: the common ones, then the benchmark's own."""
    doc = importlib.import_module(bench.module).__doc__ or ""
    parser = argparse.ArgumentParser(
        prog=f"lmrec-bench run {bench.name}",
        description=f"{bench.description}\n\n{doc}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a tiny slice, 1 epoch, few repeats: checks it runs")
    parser.add_argument("--out", type=Path, default=None, help="folder of the record (default: docs/results)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder, kept (default: a temp folder)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="processed data and embeddings (default: lmrec-train's cache; quick: a scratch one)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=None,
        metavar="LOAD",
        help="first wait (up to 30 min) until the 1-minute load average is below LOAD",
    )
    if bench.add_arguments is not None:
        bench.add_arguments(parser)
    return parser


def wait_idle(limit: float, patience_s: float = 1800.0) -> None:
    """Block until the 1-minute load average is below `limit`: on a shared machine, a timing taken beside another
    job measures the other job too (docs/benchmarks.md §10)."""
    deadline = time.monotonic() + patience_s
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        _log(f"waiting for load < {limit} (now {os.getloadavg()[0]:.2f})")
        time.sleep(30)


def run_benchmark(name: str, argv: Sequence[str]) -> int:
    """Run one benchmark and write its record; exit 1 if one of its checks failed, 2 if it cannot run here."""
    bench = registry.get(name)
    args = run_parser(bench).parse_args(list(argv))
    missing = [package for package in bench.requires if not registry.importable(package)]
    if missing and not args.quick:
        _log(f"{name} needs {', '.join(missing)}: pip install 'lmrec[bench]' (or the package named)")
        return 2
    if args.wait_idle is not None:
        wait_idle(args.wait_idle)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix=f"lmrec-bench-{name}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    if args.quick:  # tiny work on a shared machine: one thread is many times faster than two (benchmarks.md §10)
        torch.set_num_threads(1)
    load_before, started, start = records.load_average(), records.now(), time.perf_counter()
    _log(f"{name}{' (quick)' if args.quick else ''}: load average {load_before}, scratch {workdir}")
    try:
        cache = args.cache_dir or (workdir / "cache" if args.quick else None)
        result = bench.run(args, registry.Context(quick=args.quick, workdir=workdir, cache_dir=cache, log=_log))
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)  # a benchmark may change it; the next one (in the same process) must not see it
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    command = shlex.join(["lmrec-bench", "run", name, *argv])
    record = records.make_record(name, result, command, args.quick, load_before, started, time.perf_counter() - start)
    record["machine"]["torch_threads"] = used_threads  # what the benchmark ran with, not the restored default
    bad = records.non_numbers(record.get("figures", {}))
    if bad:
        raise TypeError(f"{name}: figures must be numbers ({', '.join(bad[:5])}); put the rest in facts or notes")
    out = args.out or checkout_root() / "docs" / "results"
    path = records.write_record(record, records.record_path(out, name, args.quick))
    print(json.dumps(record["figures"])[:3000])
    _log(f"record written to {path} ({record['wall_s']:.1f} s)")
    failed = [check for check, passed in record.get("checks", {}).items() if not passed]
    if failed:
        _log(f"FAILED checks: {', '.join(failed)}")
        return 1
    return 0


def renderers() -> dict[str, tables.Renderer]:
    """Table renderers: every registered benchmark's, and those of the transcribed experiments."""
    from lmrec.bench.experiments import EXPERIMENT_TABLES

    found = {name: bench.table for name, bench in registry.load_all().items() if bench.table is not None}
    return {**EXPERIMENT_TABLES, **found}


def update_tables(doc: Path | None, results: Path | None, check: bool) -> int:
    """`lmrec-bench tables [--check]` on docs/benchmarks.md (or `doc`) from its results folder."""
    root = checkout_root()
    doc = doc or root / "docs" / "benchmarks.md"
    folder = results or doc.parent / "results"
    changed = tables.update_doc(doc, records.read_records(folder), renderers(), check)
    if check and changed:
        _log(f"{doc} is out of date in blocks {', '.join(changed)}: run `lmrec-bench tables`")
        return 1
    _log(f"{doc}: {'up to date' if not changed else 'regenerated ' + ', '.join(changed)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `lmrec-bench` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"] and len(argv) >= 2 and not argv[1].startswith("-"):
        try:
            return run_benchmark(argv[1], argv[2:])
        except KeyError as err:
            _log(str(err.args[0]))
            return 2
    parser = argparse.ArgumentParser(
        prog="lmrec-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every benchmark, its description and what it needs")
    commands.add_parser("run", help="run NAME [--quick] [--out DIR] [options]; `run NAME --help` for its options")
    tables_parser = commands.add_parser("tables", help="regenerate docs/benchmarks.md's tables from the records")
    tables_parser.add_argument("--check", action="store_true", help="exit 1 if the doc is out of date, change nothing")
    tables_parser.add_argument("--doc", type=Path, default=None, help="the markdown file (docs/benchmarks.md)")
    tables_parser.add_argument("--results", type=Path, default=None, help="the records (the doc's results/)")
    args = parser.parse_args(argv)
    if args.command == "list":
        return list_benchmarks()
    if args.command == "tables":
        return update_tables(args.doc, args.results, args.check)
    parser.error("run needs a benchmark name: lmrec-bench run NAME (see lmrec-bench list)")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
