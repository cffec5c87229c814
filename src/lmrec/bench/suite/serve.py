"""`lmrec-serve` latency, throughput and a soak, on a model trained on the bundled data.

What is measured
    A ranking model is trained on the whole bundled ml-latest-small (9,742 items; ID item tower, history user tower,
    dot head, one epoch: the scoring path is what a served request runs, its accuracy does not matter here):

        lmrec-train task=ranking model/item_tower=id model/user_tower=history trainer.max_epochs=1 per_user=false

    `lmrec-serve run=<it> workers=2` then runs as its own process (two uvicorn workers, one per core), and clients
    on this machine send `POST /recommend {"user": <a random known user>, "k": 10}` (exact scoring of the whole
    catalogue, seen items masked), each client its own keep-alive HTTP connection, back to back:
      latency     `--requests` requests per client count (1, 8, 32 clients): p50 / p99 of each request's
                  round trip, and requests per second;
      soak        `--soak` requests from 8 clients mixing valid requests (recommend, batch of users, history,
                  similar, explain, item) and invalid ones (unknown ids, k out of range, malformed JSON, unknown
                  fields, oversized histories): every answer must be 2xx or 4xx with a JSON `error` line, never a
                  5xx; the server's RSS is read at request 1,000 and at the end (growth <= 10 %).
    Targets: p50 <= 5 ms and p99 <= 20 ms at 8 clients.

Why
    The serving issue's acceptance check: a trained run answers like a service, concurrently and without leaking.
    The clients share the 2 cores with the server, so the latencies include the client's own time. Quick: 100
    users, 50 requests per client count, a 300-request soak, one worker process.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import run_train
from lmrec.bench.http_load import Server, percentile, rss_bytes, timed_requests
from lmrec.bench.registry import Benchmark, Context, Result, register

TARGETS = {"p50_ms": 5.0, "p99_ms": 20.0}
CLIENTS = (1, 8, 32)
TRAIN = (
    "task=ranking",
    "model/item_tower=id",
    "model/user_tower=history",
    "trainer.max_epochs=1",
    "per_user=false",
    "seed=0",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run serve`."""
    parser.add_argument("--requests", type=int, default=2000, help="requests per client count (2,000)")
    parser.add_argument("--soak", type=int, default=10_000, help="requests of the soak (10,000)")
    parser.add_argument("--run", default=None, help="serve this run folder instead of training one")
    parser.add_argument("--workers", type=int, default=2, help="lmrec-serve worker processes (2: one per core)")


def soak_requests(users: list[Any], items: list[Any], count: int, seed: int) -> list[tuple[str, str, Any]]:
    """A mix of valid requests and the invalid ones a service meets (each kind with its share)."""
    rng = random.Random(seed)
    kinds = [
        lambda: ("POST", "/recommend", {"user": rng.choice(users), "k": 10}),
        lambda: ("POST", "/recommend", {"users": rng.sample(users, 5), "k": 5}),
        lambda: ("POST", "/recommend", {"history": rng.sample(items, 3), "k": 10}),
        lambda: ("POST", "/similar", {"item": rng.choice(items), "k": 10}),
        lambda: ("POST", "/explain", {"user": rng.choice(users), "item": rng.choice(items)}),
        lambda: ("GET", f"/items/{rng.choice(items)}", None),
        lambda: ("POST", "/recommend", {"user": "no-such-user"}),
        lambda: ("POST", "/recommend", {"user": rng.choice(users), "k": 100_000}),
        lambda: ("POST", "/recommend", '{"user": 1, "k": '),
        lambda: ("POST", "/recommend", {"usr": 1}),
        lambda: ("POST", "/recommend", {"history": items[:1] * 20_000}),
        lambda: ("POST", "/similar", {"item": "no-such-item"}),
        lambda: ("GET", "/items/no-such-item", None),
        lambda: ("POST", "/explain", {"item": rng.choice(items)}),
    ]
    return [rng.choice(kinds)() for _ in range(count)]


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: 100 users, few requests): its figures, options and facts, for the record."""
    import httpx

    from lmrec.bench.record import usable_cores

    requests = 50 if ctx.quick else args.requests
    soak = 300 if ctx.quick else args.soak
    overrides = [*TRAIN, *(["data.max_users=100"] if ctx.quick else [])]
    if ctx.cache_dir is not None:
        overrides.append(f"paths.cache_dir={ctx.cache_dir}")
    train_s = 0.0
    if args.run:
        run_dir = Path(args.run)
    else:
        run_dir = ctx.workdir / "trained"
        began = time.perf_counter()
        run_train(overrides, run_dir)
        train_s = time.perf_counter() - began
    figures: dict[str, Any] = {"train_s": train_s, "clients": {}}
    workers = 1 if ctx.quick else args.workers  # quick: the checks, not the throughput, so one process to start
    with Server(run_dir, ctx.workdir / "serve.log", workers) as server:
        health = httpx.get(f"{server.url}/health").json()
        catalogue = pd_ids(run_dir)
        users, items = catalogue["users"], catalogue["items"]
        rng = random.Random(0)
        warm = [[("POST", "/recommend", {"user": rng.choice(users), "k": 10}) for _ in range(50)]]
        timed_requests(server.url, warm)
        for clients in CLIENTS:
            per_client = max(1, requests // clients)
            bodies = [
                [("POST", "/recommend", {"user": rng.choice(users), "k": 10}) for _ in range(per_client)]
                for _ in range(clients)
            ]
            latencies, answers, wall = timed_requests(server.url, bodies)
            ok = sum(status == 200 for status, _ in answers)
            figures["clients"][str(clients)] = {
                "requests": len(latencies),
                "ok": ok,
                "p50_ms": 1000 * percentile(latencies, 50),
                "p99_ms": 1000 * percentile(latencies, 99),
                "throughput_rps": len(latencies) / wall,
            }
            ctx.log(f"{clients} clients: {figures['clients'][str(clients)]}")
        mix = soak_requests(users, items, soak, seed=1)
        first = max(1, min(1000, soak // 10))
        _, head, _ = timed_requests(server.url, [mix[:first]])
        rss_first = rss_bytes(server.proc.pid)
        rest = mix[first:]
        _, tail, soak_wall = timed_requests(server.url, [rest[i::8] for i in range(8)])
        rss_last = rss_bytes(server.proc.pid)
        answers = head + tail
    statuses = [status for status, _ in answers]
    readable = sum(
        1 for status, body in answers if status < 400 or (isinstance(body, dict) and isinstance(body.get("error"), str))
    )
    figures["soak"] = {
        "requests": len(answers),
        "ok_2xx": sum(200 <= s < 300 for s in statuses),
        "client_errors_4xx": sum(400 <= s < 500 for s in statuses),
        "server_errors_5xx": sum(s >= 500 for s in statuses),
        "unreadable_errors": len(answers) - readable,
        "throughput_rps": len(rest) / soak_wall if soak_wall else 0.0,
        "rss_mb_at_first": rss_first / 1e6,
        "rss_mb_at_end": rss_last / 1e6,
        "rss_growth_pct": 100.0 * (rss_last - rss_first) / rss_first if rss_first else 0.0,
    }
    eight = figures["clients"]["8"]
    checks = {
        "no_5xx": figures["soak"]["server_errors_5xx"] == 0,
        "errors_readable": figures["soak"]["unreadable_errors"] == 0,
        "all_latency_requests_ok": all(c["ok"] == c["requests"] for c in figures["clients"].values()),
    }
    if not ctx.quick:
        checks["p50_within_target"] = eight["p50_ms"] <= TARGETS["p50_ms"]
        checks["p99_within_target"] = eight["p99_ms"] <= TARGETS["p99_ms"]
        checks["memory_flat"] = figures["soak"]["rss_growth_pct"] <= 10.0
    return {
        "figures": figures,
        "options": {"requests": requests, "soak": soak, "train": list(overrides), "k": 10, "workers": workers},
        "facts": {
            "model": health.get("model"),
            "items": health.get("items"),
            "users": health.get("users"),
            "usable_cores": usable_cores(),
            "server": f"lmrec-serve (uvicorn, {workers} worker processes)",
        },
        "checks": checks,
    }


def pd_ids(run_dir: Path) -> dict[str, list[Any]]:
    """The run's user and item ids, from the server's own answers' source: the run's data card."""
    from lmrec.serving.loaded import load_run

    data = load_run(run_dir).datamodule.prepare()
    return {"users": data.users["user_id"].tolist(), "items": data.items["item_id"].tolist()}


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        f = r["figures"]
        for clients, c in f.get("clients", {}).items():
            rows.append(
                [
                    tables.run_cell(r),
                    tables.cell(r.get("facts", {}).get("items")),
                    clients,
                    tables.cell(c.get("p50_ms"), ".2f"),
                    tables.cell(c.get("p99_ms"), ".2f"),
                    tables.cell(c.get("throughput_rps"), ".0f"),
                ]
            )
        soak = f.get("soak", {})
        summary = json.dumps(
            {k: soak.get(k) for k in ("requests", "server_errors_5xx", "unreadable_errors")}, separators=(",", ":")
        )
        rows.append(
            [tables.run_cell(r), "soak", summary, "", "", tables.cell(soak.get("rss_growth_pct"), ".1f") + " % RSS"]
        )
    return tables.table(["run", "items", "clients", "p50 ms", "p99 ms", "requests/s"], rows)


register(
    Benchmark(
        name="serve",
        description="lmrec-serve: recommend latency at 1/8/32 clients (p50 <= 5 ms, p99 <= 20 ms at 8) and a soak",
        run=run,
        add_arguments=add_arguments,
        table=table,
        requires=("fastapi", "uvicorn", "httpx"),
        module=__name__,
    )
)
