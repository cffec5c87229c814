"""Thread policy: one ranking training epoch (ID towers, BPR, the bundled data) idle and beside a busy neighbour.

What is measured
    Wall time of one training epoch (plain loop: batch, `RankingTask.training_loss`, backward, AdamW step; no
    validation) of the ID item tower + ID user tower ranking model on the bundled data, for each torch thread
    count and OpenMP wait policy, first on an otherwise idle machine and then while a CPU-bound neighbour runs:
    a second process doing float32 matrix products with torch's default thread count (what another default
    torch job on the same machine does). The benchmark starts and stops the neighbour itself. Each setting runs
    in a fresh worker process, because the OpenMP wait policy is read once when torch loads its OpenMP runtime.

Why
    On a shared machine torch's default (one thread per core, with OpenMP threads that spin while they wait)
    collapses when a neighbour takes a core: each parallel region waits for its slowest thread. The ratio
    busy / idle per setting is what chooses lmrec's default (`torch_threads`, `lmrec.runtime.threads`).

Run on an idle machine:  python scripts/bench_threads.py [--json docs/bench_threads.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchutil import machine_info, write_json

REPO = Path(__file__).resolve().parents[1]


def worker(threads: int, batch_size: int, epochs: int) -> dict:
    import torch

    from lmrec.model.build import build_model
    from tests.helpers import compose_train, prepared_data

    torch.set_num_threads(threads)
    cache = Path(os.environ.get("LMREC_CACHE_DIR", REPO / ".cache" / "lmrec"))
    cfg = compose_train(
        ["task=ranking", "model=mf", f"data.batch_size={batch_size}", "logger=csv"], cache / "bench-out", cache
    )
    datamodule = prepared_data(cfg)
    torch.manual_seed(0)
    model = build_model(cfg, datamodule, datamodule.task)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003, weight_decay=0.05)
    loader = datamodule.train_dataloader()
    times = []
    for _ in range(epochs + 1):  # the first epoch warms up the allocator and the thread pool
        start = time.perf_counter()
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            model.task.training_loss(model, batch).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return {"epoch_s": min(times[1:]), "steps": len(loader)}


NEIGHBOUR = "import torch\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"


def measure(threads: int, wait: str, args: argparse.Namespace) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'scripts'}:{REPO}"}
    if wait == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        env.pop("OMP_WAIT_POLICY", None)
    command = [sys.executable, __file__, "--worker", str(threads), "--batch-size", str(args.batch_size)]
    command += ["--epochs", str(args.epochs)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per setting (the fastest is kept)")
    parser.add_argument("--threads", default=f"1,{os.cpu_count()}", help="comma-separated thread counts")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.batch_size, args.epochs)))
        return
    settings = [(int(t), wait) for t in args.threads.split(",") for wait in ("active", "passive")]
    rows = []
    for threads, wait in settings:
        idle = measure(threads, wait, args)
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
        try:
            time.sleep(2.0)  # let the neighbour reach full speed
            busy = measure(threads, wait, args)
        finally:
            neighbour.kill()
            neighbour.wait()
        rows.append({"threads": threads, "omp_wait": wait, "idle_s": idle["epoch_s"], "busy_s": busy["epoch_s"]})
        print(f"threads={threads} wait={wait}: idle {idle['epoch_s']:.2f} s, busy {busy['epoch_s']:.2f} s", flush=True)
    fastest_idle = min(r["idle_s"] for r in rows)
    print(f"\none epoch, {idle['steps']} steps of batch {args.batch_size}; ratios against the fastest idle epoch")
    print("| threads | OpenMP wait | idle epoch (s) | busy epoch (s) | busy / idle | idle / fastest idle |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['threads']} | {r['omp_wait']} | {r['idle_s']:.2f} | {r['busy_s']:.2f} | "
            f"{r['busy_s'] / r['idle_s']:.2f}× | {r['idle_s'] / fastest_idle:.2f}× |"
        )
    write_json(args.json, {"machine": machine_info(), "batch_size": args.batch_size, "rows": rows})


if __name__ == "__main__":
    main()
