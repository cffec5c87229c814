"""Wall time and peak memory of the default main job (`lmrec-train`), with a cold and then a warm cache.

What is measured
    The default configuration (rating task, frozen all-MiniLM-L6-v2 text item tower, id user tower, dot head, CPU
    trainer with early stopping), run twice as separate processes:

        lmrec-train logger=csv hydra.run.dir=<workdir>/run1 paths.cache_dir=<workdir>/cache [--extra ...]   # cold
        lmrec-train logger=csv hydra.run.dir=<workdir>/run2 paths.cache_dir=<workdir>/cache [--extra ...]   # warm

    The cold run starts with an empty cache folder, so it builds the processed tables and encodes all item texts
    with MiniLM before training; the warm run finds both in the cache and only trains and tests. For each run:

    wall time   from process start to exit (interpreter start-up and imports included);
    peak RSS    two readings, the larger is compared with the target:
                - ru_maxrss: each run is started through its own fresh Python wrapper, so
                  `getrusage(RUSAGE_CHILDREN).ru_maxrss` of that wrapper is the exact peak resident set of the
                  largest process of that run alone (it is a max over all children so far, hence the wrapper);
                - tree: psutil polling (every `--poll` s) of the sum of RSS over the run's whole process tree,
                  which also covers data-loader workers, but can miss a peak shorter than the poll interval.

    Both are printed against the targets (cold <= 600 s, warm <= 180 s, peak RSS <= 3 GB = 3000 MB, MB = 10^6
    bytes), with the test metrics of each run read from its metrics.json.

Why
    "Runs on a laptop CPU in minutes, in a few GB" is a requirement of the project; this is its acceptance check.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from benchutil import machine_info, write_json

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000

# Runs the command given as arguments, then writes ru_maxrss (KiB on Linux) of its children to the file in argv[1].
WRAPPER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
"""


def train_command() -> list[str]:
    script = shutil.which("lmrec-train") or str(Path(sys.executable).with_name("lmrec-train"))
    return [script] if Path(script).is_file() else [sys.executable, "-m", "lmrec.cli.train"]


def tree_rss(root: psutil.Process) -> int:
    """Sum of RSS over the wrapper's descendants (the wrapper itself is left out: it is not the job)."""
    total = 0
    try:
        children = root.children(recursive=True)
    except psutil.Error:
        return 0
    for proc in children:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def run_job(overrides: list[str], run_dir: Path, poll: float) -> dict:
    """Run one lmrec-train in a fresh wrapper; return its wall time, peak RSS readings, exit code and metrics."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    maxrss_file = run_dir.parent / f"{run_dir.name}.maxrss"
    log_file = run_dir.parent / f"{run_dir.name}.log"
    command = [*train_command(), *overrides]
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    peak_tree = 0
    loadavg_before = os.getloadavg()
    with open(log_file, "w") as log:
        start = time.perf_counter()
        wrapper = subprocess.Popen(
            [sys.executable, "-c", WRAPPER, str(maxrss_file), *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
        proc = psutil.Process(wrapper.pid)
        while wrapper.poll() is None:
            peak_tree = max(peak_tree, tree_rss(proc))
            time.sleep(poll)
        seconds = time.perf_counter() - start
    maxrss = int(maxrss_file.read_text()) * 1024 if maxrss_file.is_file() else 0
    metrics_path = run_dir / "metrics.json"
    run_info_path = run_dir / "run.json"
    return {
        "command": " ".join(command),
        "returncode": wrapper.returncode,
        "wall_s": seconds,
        "peak_rss_maxrss_bytes": maxrss,
        "peak_rss_tree_bytes": peak_tree,
        "peak_rss_bytes": max(maxrss, peak_tree),
        "metrics": json.loads(metrics_path.read_text()) if metrics_path.is_file() else {},
        "run": json.loads(run_info_path.read_text()) if run_info_path.is_file() else {},
        "log": str(log_file),
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="folder for the runs and the cache (default: a new temp dir)")
    parser.add_argument("--extra", nargs="*", default=[], help="more Hydra overrides for both runs, e.g. seed=1")
    parser.add_argument("--cold-target", type=float, default=600.0, help="cold-run wall-time target, s (600)")
    parser.add_argument("--warm-target", type=float, default=180.0, help="warm-run wall-time target, s (180)")
    parser.add_argument("--rss-target-mb", type=float, default=3000.0, help="peak RSS target, MB (3000 = 3 GB)")
    parser.add_argument("--poll", type=float, default=0.1, help="psutil polling interval, s (0.1)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed (not only on failure)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lmrec-bench-main-"))
    cache = workdir / "cache"
    if cache.exists() and any(cache.iterdir()):
        print(f"error: {cache} is not empty; the cold run needs an empty cache (use a new --workdir)", file=sys.stderr)
        return 2
    runs: dict[str, dict] = {}
    for n, label in enumerate(("cold", "warm"), start=1):
        run_dir = workdir / f"run{n}"
        overrides = ["logger=csv", f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache}", *args.extra]
        print(f"[{label}] {' '.join([*train_command(), *overrides])}", file=sys.stderr)
        runs[label] = run_job(overrides, run_dir, args.poll)
        result = runs[label]
        print(
            f"[{label}] exit {result['returncode']} after {result['wall_s']:.1f} s (log: {result['log']})",
            file=sys.stderr,
        )
        if result["returncode"] != 0:
            print(Path(result["log"]).read_text()[-3000:], file=sys.stderr)
            break

    targets = {"cold": args.cold_target, "warm": args.warm_target}
    print(f"\nMain job (default config{', ' + ' '.join(args.extra) if args.extra else ''}), workdir {workdir}")
    print(
        f"{'run':<6}{'wall s':>9}{'target s':>10}{'':>6}{'peak RSS MB':>13}{'(maxrss':>9}{'tree)':>8}"
        f"{'target MB':>11}{'':>6}{'epochs':>8}"
    )
    missed = False
    for label, r in runs.items():
        ok_time = r["wall_s"] <= targets[label]
        ok_rss = r["peak_rss_bytes"] <= args.rss_target_mb * MB
        missed |= not (ok_time and ok_rss and r["returncode"] == 0)
        r["meets_time_target"], r["meets_rss_target"] = ok_time, ok_rss
        print(
            f"{label:<6}{r['wall_s']:>9.1f}{targets[label]:>10.0f}{'ok' if ok_time else 'MISS':>6}"
            f"{r['peak_rss_bytes'] / MB:>13.0f}{r['peak_rss_maxrss_bytes'] / MB:>9.0f}"
            f"{r['peak_rss_tree_bytes'] / MB:>8.0f}{args.rss_target_mb:>11.0f}{'ok' if ok_rss else 'MISS':>6}"
            f"{r['run'].get('epochs', '?'):>8}"
        )
    names = sorted({k for r in runs.values() for k in r["metrics"]})
    if names:
        print(f"\n{'metric':<22}" + "".join(f"{label:>12}" for label in runs))
        for name in names:
            cells = "".join(
                f"{r['metrics'][name]:>12.4f}" if name in r["metrics"] else f"{'-':>12}" for r in runs.values()
            )
            print(f"{name:<22}{cells}")

    result = {
        "benchmark": "bench_main_job",
        "workdir": str(workdir),
        "extra": args.extra,
        "targets": {"cold_s": args.cold_target, "warm_s": args.warm_target, "peak_rss_mb": args.rss_target_mb},
        "runs": runs,
        "machine": machine_info(),
    }
    write_json(args.json_path, result)
    if any(r["returncode"] != 0 for r in runs.values()) or len(runs) < 2:
        return 1
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
