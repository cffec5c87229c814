"""The one record writer: what a benchmark measured, plus everything a reader needs to trust or compare it.

A figure without its command, code version, machine and load is not reproducible and not comparable: every record
holds the figures, the exact command, the git commit (and whether the tree had uncommitted changes), the machine
(CPU model, cores, torch threads, torch and Python versions), the load average before and after the run, the date,
and whether it was a quick run (a tiny slice that checks the benchmark works, not a result).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: Fields every record has (the test suite checks them).
RECORD_FIELDS = ("benchmark", "figures", "command", "git", "machine", "load_average", "date", "quick")
#: The code whose version a record names: the lmrec package (src/lmrec), not the current directory.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_facts() -> dict[str, Any]:
    """Commit of the lmrec code that ran and whether tracked files differed from it: the package's checkout, or,
    for lmrec installed from a wheel (the GPU job), the checkout the command runs in (`from` says which; None
    outside any checkout)."""
    for folder, where in ((PACKAGE_DIR, None), (Path.cwd(), "current directory")):
        commit = _git(folder, "rev-parse", "--short", "HEAD")
        if commit:
            status = _git(folder, "status", "--porcelain", "--untracked-files=no")
            facts: dict[str, Any] = {"commit": commit, "dirty": bool(status) if status is not None else None}
            return {**facts, "from": where} if where else facts
    return {"commit": None, "dirty": None}


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity), which is what a benchmark can use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_facts() -> dict[str, Any]:
    """CPU, cores, torch threads, versions and the GPU if any: what figures from two machines are compared by."""
    import torch

    facts: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import transformers

        facts["transformers"] = transformers.__version__
    except ImportError:
        pass
    return facts


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages: a busy machine slows some benchmarks many times over."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def now() -> str:
    """The current UTC time, ISO 8601 to the second: a record's date."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def make_record(
    name: str,
    result: dict[str, Any],
    command: str,
    quick: bool,
    load_before: list[float],
    started: str,
    seconds: float,
) -> dict[str, Any]:
    """The record of one run: the benchmark's result (figures, options, facts, reference, checks, notes) with
    the provenance fields around it."""
    record: dict[str, Any] = {
        "benchmark": name,
        "quick": quick,
        "date": started,
        "command": command,
        "git": git_facts(),
        "machine": machine_facts(),
        "load_average": {"before": load_before, "after": load_average()},
        "wall_s": round(seconds, 3),
    }
    record.update(result)
    return record


def non_numbers(figures: Any, path: str = "figures") -> list[str]:
    """Where `figures` holds something other than a finite number (nested dicts and lists are walked): figures
    are numbers, anything else belongs in `facts`, `options` or `notes`."""
    if isinstance(figures, dict):
        return [bad for key, value in figures.items() for bad in non_numbers(value, f"{path}.{key}")]
    if isinstance(figures, list | tuple):
        return [bad for i, value in enumerate(figures) for bad in non_numbers(value, f"{path}[{i}]")]
    if isinstance(figures, bool) or not isinstance(figures, int | float) or not math.isfinite(figures):
        return [f"{path}={figures!r}"]
    return []


def record_path(out_dir: Path, name: str, quick: bool) -> Path:
    """`<out>/<name>.json`; a quick run writes `<name>.quick.json`, so it never replaces a full result."""
    return Path(out_dir) / (f"{name}.quick.json" if quick else f"{name}.json")


def write_record(record: dict[str, Any], path: Path) -> Path:
    """Write the record as strict JSON (no NaN), creating the folder; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, allow_nan=False, default=_plain) + "\n")
    tmp.replace(path)
    return path


def read_records(folder: Path) -> list[dict[str, Any]]:
    """Every full-run record in `folder` (quick records are checks, not results), oldest first."""
    records = []
    for path in sorted(Path(folder).glob("*.json")):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and "benchmark" in record and not record.get("quick"):
            record["_file"] = path.name
            records.append(record)
    return sorted(records, key=lambda r: (str(r.get("date")), r["_file"]))


def _plain(value: Any) -> Any:
    """numpy scalars and paths in a result become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
