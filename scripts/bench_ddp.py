"""What data-parallel training costs on CPU, and how fast training runs on a GPU: figures to size runs with.

CPU (always), on a warm cache, the same job twice in this invocation, one process after the other:

    lmrec-train logger=csv trainer=cpu     trainer.max_epochs=E ~callbacks.early_stopping [--extra ...]   # 1 process
    lmrec-train logger=csv trainer=ddp_sim trainer.max_epochs=E ~callbacks.early_stopping [--extra ...]   # 2 processes

(plus `+callbacks.fit_timer=...`, see fit_timer.py). A first untimed run fills the caches. For each run: wall time
of the whole command (start-up, data, training, test), the median training time of an epoch after the first
(validation excluded) and training rows per second; the two kinds of run alternate --repeats times and the
medians give the 2-process / 1-process ratios. Each DDP process gets
half of the cores (Lightning sets torch threads to cores / processes) and half of the rows; an epoch therefore
has half as many optimizer steps with a twice as large effective batch, so test metrics differ between the two
runs for that reason (the evaluation itself is exact under DDP: tests/sweeps/test_sweeps.py).

GPU (--gpu; skipped, with a note, when CUDA is not available): `trainer=gpu` (bf16-mixed) once per --mode
LABEL:OVERRIDES, e.g. `--mode frozen:` (the default cached, frozen encoder) and `--mode "lora:model/tuning=lora"`
(a tuning mode given as Hydra overrides, so modes added later need no change here). Reported: training rows per
second (median epoch after the first) and peak GPU memory.

Why
    Users size sweeps and clusters from these numbers: whether DDP pays on their machine, and how many rows per
    second a GPU trains for each tuning mode.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import machine_info, write_json

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent


def train_command() -> list[str]:
    script = shutil.which("lmrec-train") or str(Path(sys.executable).with_name("lmrec-train"))
    return [script] if Path(script).is_file() else [sys.executable, "-m", "lmrec.cli.train"]


def run_job(label: str, overrides: list[str], workdir: Path, cache: Path, epochs: int) -> dict:
    """One lmrec-train process with a fixed number of epochs; its wall time, epoch times and run files."""
    run_dir = workdir / label
    timing = workdir / f"{label}.timing.json"
    command = [
        *train_command(),
        "logger=csv",
        f"trainer.max_epochs={epochs}",
        f"trainer.min_epochs={epochs}",
        "~callbacks.early_stopping",
        "~callbacks.rich_progress_bar",
        "+callbacks.fit_timer._target_=fit_timer.FitTimer",
        f"+callbacks.fit_timer.path={timing}",
        f"hydra.run.dir={run_dir}",
        f"paths.cache_dir={cache}",
        *overrides,
    ]
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"), TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")]))
    print(f"[{label}] {' '.join(command)}", file=sys.stderr)
    log = workdir / f"{label}.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    if code != 0:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"[{label}] lmrec-train failed with exit code {code}; log: {log}")
    times = json.loads(timing.read_text())
    info = json.loads((run_dir / "run.json").read_text())
    rows = info["data_stats"]["train_interactions"]
    steady = times["epoch_train_s"][1:] or times["epoch_train_s"]
    epoch_s = statistics.median(steady)
    return {
        "overrides": overrides,
        "wall_s": wall,
        "epoch_train_s": times["epoch_train_s"],
        "median_epoch_train_s": epoch_s,
        "rows_per_epoch": rows,
        "rows_per_s": rows / epoch_s,
        "processes": times["world_size"],
        "batches_per_rank": times["batches_per_rank"],
        "cuda_peak_bytes": times["cuda_peak_bytes"],
        "metrics": json.loads((run_dir / "metrics.json").read_text()),
        "log": str(log),
    }


def cpu_benchmark(workdir: Path, cache: Path, epochs: int, extra: list[str], repeats: int) -> dict:
    """1-process and 2-process runs alternate, `repeats` times each, so a slow spell of a shared machine hits both;
    medians are compared."""
    run_job("warmup", ["trainer=cpu", *extra], workdir, cache, 1)
    runs: dict[str, list[dict]] = {"1proc": [], "2proc": []}
    for i in range(repeats):
        runs["1proc"].append(run_job(f"cpu_1proc_{i}", ["trainer=cpu", *extra], workdir, cache, epochs))
        runs["2proc"].append(run_job(f"cpu_2proc_{i}", ["trainer=ddp_sim", *extra], workdir, cache, epochs))
    med = {
        key: {m: statistics.median(r[m] for r in rs) for m in ("wall_s", "median_epoch_train_s", "rows_per_s")}
        for key, rs in runs.items()
    }
    ratios = {
        "wall_2proc_over_1proc": med["2proc"]["wall_s"] / med["1proc"]["wall_s"],
        "epoch_2proc_over_1proc": med["2proc"]["median_epoch_train_s"] / med["1proc"]["median_epoch_train_s"],
    }
    shown = f", {' '.join(extra)}" if extra else ""
    print(f"\nCPU, {epochs} epochs{shown} ({os.cpu_count()} cores), median of {repeats} runs each")
    print(f"{'run':<12}{'processes':>10}{'wall s':>9}{'epoch s':>10}{'rows/s':>11}{'batches/rank':>14}")
    for label, key in (("1 process", "1proc"), ("2 processes", "2proc")):
        last = runs[key][-1]
        print(
            f"{label:<12}{last['processes']:>10}{med[key]['wall_s']:>9.1f}{med[key]['median_epoch_train_s']:>10.3f}"
            f"{med[key]['rows_per_s']:>11.0f}{last['batches_per_rank'][-1]:>14}"
        )
    print(
        f"ratio 2-process / 1-process: wall {ratios['wall_2proc_over_1proc']:.2f}, "
        f"training epoch {ratios['epoch_2proc_over_1proc']:.2f}"
    )
    return {"runs": runs, "medians": med, "ratios": ratios}


def gpu_benchmark(workdir: Path, cache: Path, epochs: int, extra: list[str], modes: list[str]) -> dict:
    import torch

    if not torch.cuda.is_available():
        print("\nGPU: no CUDA device here; GPU throughput not measured.")
        return {"skipped": "no CUDA device"}
    results = {}
    run_job("gpu_warmup", ["trainer=gpu", *extra], workdir, cache, 1)
    for mode in modes:
        label, _, overrides = mode.partition(":")
        results[label] = run_job(f"gpu_{label}", ["trainer=gpu", *overrides.split(), *extra], workdir, cache, epochs)
    print(f"\nGPU ({torch.cuda.get_device_name(0)}), bf16-mixed, {epochs} epochs")
    print(f"{'mode':<12}{'overrides':<30}{'rows/s':>11}{'epoch s':>10}{'peak GPU MB':>13}")
    for label, r in results.items():
        peak = (r["cuda_peak_bytes"] or 0) / 1e6
        shown = " ".join(r["overrides"][1:]) or "(default)"
        print(f"{label:<12}{shown:<30}{r['rows_per_s']:>11.0f}{r['median_epoch_train_s']:>10.3f}{peak:>13.0f}")
    return {"device": torch.cuda.get_device_name(0), "runs": results}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="folder for runs and cache (default: a new temp dir)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per run (5)")
    parser.add_argument("--extra", nargs="*", default=[], help="Hydra overrides for every run, e.g. task=ranking")
    parser.add_argument("--repeats", type=int, default=3, help="CPU: runs of each kind, alternating (3)")
    parser.add_argument("--gpu", action="store_true", help="also measure GPU throughput per --mode")
    parser.add_argument(
        "--mode",
        action="append",
        default=None,
        help="LABEL:OVERRIDES for the GPU part, repeatable (default: 'frozen:'), e.g. 'lora:model/tuning=lora'",
    )
    parser.add_argument("--skip-cpu", action="store_true", help="only the GPU part")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lmrec-bench-ddp-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cache = workdir / "cache"
    result: dict = {"benchmark": "bench_ddp", "epochs": args.epochs, "extra": args.extra}
    if not args.skip_cpu:
        result["cpu"] = cpu_benchmark(workdir, cache, args.epochs, args.extra, args.repeats)
    if args.gpu:
        result["gpu"] = gpu_benchmark(workdir, cache, args.epochs, args.extra, args.mode or ["frozen:"])
    result["machine"] = machine_info()
    write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
