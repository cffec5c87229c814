"""Load a local HTTP service the way the serving benchmark needs: a server in its own process, keep-alive clients
in threads, round-trip times and the server's resident memory.

Why not a load-testing tool (locust, wrk): they run as their own processes with their own reporting; here the
benchmark needs each answer's status and JSON body (to check the soak's error lines) and the same process's
clock, with the fewest moving parts on two shared cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its descendants (the uvicorn workers), from Linux's /proc; 0 elsewhere."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            total += sum(rss_bytes(int(child)) for child in children)
    except OSError:
        pass
    return total


class Server:
    """`lmrec-serve` in its own process, stopped on exit."""

    def __init__(self, run: Path, log: Path, workers: int = 1) -> None:
        self.port = free_port()
        script = Path(sys.executable).parent / "lmrec-serve"
        command = [str(script), f"run={run}", f"port={self.port}", f"workers={workers}"]
        self.log = open(log, "w")  # noqa: SIM115 (closed in __exit__)
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lmrec-serve exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("lmrec-serve did not answer /health within 180 s")

    def __exit__(self, *exc: Any) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def timed_requests(url: str, bodies: list[list[tuple[str, str, Any]]]) -> tuple[list[float], list[tuple], float]:
    """Each client (one list of (method, path, body) per client, in its own thread and keep-alive connection)
    sends its requests back to back. Returns (every round trip in seconds, every (status, json or None), wall
    seconds). The client is the standard library's `http.client`: it costs the shared cores far less per request
    than a full-featured client would, so the figures are the server's more than the client's."""
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(url)
    latencies: list[float] = []
    answers: list[tuple] = []
    lock = threading.Lock()
    ready = threading.Barrier(len(bodies) + 1)

    def client(requests: list[tuple[str, str, Any]]) -> None:
        prepared = [(m, p, b if isinstance(b, str) or b is None else json.dumps(b)) for m, p, b in requests]
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        connection.connect()
        mine, got = [], []
        ready.wait()
        for method, path, body in prepared:
            start = time.perf_counter()
            connection.request(method, path, body=body, headers={"content-type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            mine.append(time.perf_counter() - start)
            try:
                got.append((response.status, json.loads(payload)))
            except ValueError:
                got.append((response.status, None))
        connection.close()
        with lock:
            latencies.extend(mine)
            answers.extend(got)

    threads = [threading.Thread(target=client, args=(requests,)) for requests in bodies]
    for thread in threads:
        thread.start()
    ready.wait()  # every connection open: the clock measures requests, not connection set-up
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, answers, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q)) if values else float("nan")
