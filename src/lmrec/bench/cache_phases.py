"""The timed phases of the cache-format benchmark, each run in a fresh process (`lmrec.bench.child`).

    parquet_write            lmrec's own `_write_entry` (to_parquet x3, key.json, seal_dir), unchanged;
    datasets_write           the same entry as `Dataset.from_pandas(df).save_to_disk(entry/<table>)` per table,
                             key.json, the same seal_dir over every file datasets writes;
    parquet_read             `_read_entry` alone: three Parquet files -> pandas;
    parquet_read_verified    `verified_entry` + `_read_entry` under `entry_lock`: today's cache hit, exactly;
    datasets_load            `datasets.load_from_disk` x3 (memory-mapped, nothing parsed into pandas);
    datasets_load_verified   the same after `verified_entry`: the cheapest datasets hit that keeps the guarantee;
    datasets_read            `load_from_disk` + `.to_pandas()` x3: what lmrec would need instead of `_read_entry`;
    datasets_read_verified   the same after `verified_entry`: the like-for-like replacement of today's cache hit;
    datasets_import          `import datasets` on top of `lmrec.data.processed` (numpy, pandas, pyarrow loaded).

Peak RSS is VmHWM after the high-water mark is reset just before the phase (`/proc/self/clear_refs`), so it is the
phase's own peak (plus what the process already held: the tables, for a write).
"""

from __future__ import annotations

import gc
import json
import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TABLES = ("interactions", "users", "items")
WRITES = ("parquet_write", "datasets_write")


def entry(base: Path, fmt: str, repeat: int = 0) -> Path:
    """The entry folder of one format (and write repeat): each repeat writes its own, so none overwrites another."""
    return Path(base) / fmt / f"w{repeat}"


def proc_status() -> dict[str, float]:
    """Current and peak RSS, split into heap and mapped-file pages (GB): a memory-mapped table shows up as RssFile,
    which the kernel can drop under pressure, unlike the heap copy of a parsed table."""
    fields = {"VmRSS": "rss_gb", "VmHWM": "peak_gb", "RssAnon": "rss_anon_gb", "RssFile": "rss_file_gb"}
    out = {}
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        key, _, value = line.partition(":")
        if key in fields:
            out[fields[key]] = round(int(value.split()[0]) / 1024**2, 3)
    return out


def timed(parts: dict[str, float], name: str, fn: Callable, *args: Any) -> Any:
    """Call `fn` and add its seconds to `parts[name]`: the parts of a phase (hash, read, to_pandas) sum to it."""
    start = time.perf_counter()
    out = fn(*args)
    parts[name] = parts.get(name, 0.0) + time.perf_counter() - start
    return out


def source_data(base: Path) -> Any:
    """The tables to write, from the pickle the parent wrote (data generation stays outside the timing)."""
    from lmrec.data.processed import ProcessedData

    with open(Path(base) / "source.pkl", "rb") as handle:
        return ProcessedData(**pickle.load(handle))


def write_parquet(base: Path, repeat: int, data: Any) -> dict[str, float]:
    """lmrec's own `_write_entry`, unchanged, with the seal's time recorded apart."""
    import lmrec.data.processed as processed

    parts: dict[str, float] = {}
    real_seal = processed.seal_dir
    processed.seal_dir = lambda folder: timed(parts, "seal_s", real_seal, folder)  # looked up when called
    try:
        processed._write_entry(entry(base, "parquet", repeat), data, {}, {})
    finally:
        processed.seal_dir = real_seal
    return parts


def write_datasets(base: Path, repeat: int, data: Any) -> dict[str, float]:
    """`_write_entry` with save_to_disk in place of to_parquet: the same temporary folder, key.json and manifest, so
    the two writes differ only in the table format."""
    import datasets

    from lmrec.atomic import publish_dir
    from lmrec.cache_integrity import seal_dir

    parts: dict[str, float] = {}
    with publish_dir(entry(base, "datasets", repeat)) as tmp:
        for name in TABLES:
            convert = lambda frame: datasets.Dataset.from_pandas(frame, preserve_index=False)  # noqa: E731
            table = timed(parts, "from_pandas_s", convert, getattr(data, name))
            timed(parts, "save_to_disk_s", table.save_to_disk, str(tmp / name))
        meta = {"inputs": {}, "options": {}, "dropped": data.dropped, "filters": data.filters}
        (tmp / "key.json").write_text(json.dumps(meta, indent=2, default=str))
        timed(parts, "seal_s", seal_dir, tmp)
    return parts


def verify(folder: Path, parts: dict[str, float]) -> None:
    """The manifest check every cache hit runs (`verified_entry`), timed as `verify_s`."""
    from lmrec.cache_integrity import verified_entry

    if not timed(parts, "verify_s", verified_entry, folder, "processed-data"):
        raise RuntimeError(f"{folder} failed its manifest check")


def read_parquet(base: Path, check: bool) -> dict[str, float]:
    """`_read_entry` (and, with `check`, `verified_entry` first) under the entry lock: a cache hit."""
    from lmrec.cache_integrity import entry_lock
    from lmrec.data.processed import _read_entry

    folder, parts = entry(base, "parquet"), {}
    with entry_lock(folder):
        if check:
            verify(folder, parts)
        data = timed(parts, "read_s", _read_entry, folder)
    if data is None:
        raise RuntimeError(f"{folder} did not read")
    parts["rows"] = len(data.interactions)
    return parts


def load_datasets(folder: Path, parts: dict[str, float], to_pandas: bool) -> dict[str, Any]:
    """`load_from_disk` of each table (and `to_pandas` when asked), reading key.json as a hit does."""
    import datasets

    json.loads((folder / "key.json").read_text())  # read on every hit, as _read_entry does
    loaded = {name: timed(parts, "load_s", datasets.load_from_disk, str(folder / name)) for name in TABLES}
    if not to_pandas:
        return loaded
    return {name: timed(parts, "to_pandas_s", table.to_pandas) for name, table in loaded.items()}


def read_datasets(base: Path, check: bool, to_pandas: bool) -> dict[str, float]:
    """The datasets counterpart of `read_parquet`: optional check, load, optional `to_pandas`."""
    from lmrec.cache_integrity import entry_lock

    folder, parts = entry(base, "datasets"), {}
    with entry_lock(folder):
        if check:
            verify(folder, parts)
        tables = load_datasets(folder, parts, to_pandas)
    parts["rows"] = len(tables["interactions"])
    return parts


RUNNERS: dict[str, Callable[[Path, int, Any], dict[str, float]]] = {
    "parquet_write": write_parquet,
    "datasets_write": write_datasets,
    "parquet_read": lambda base, repeat, data: read_parquet(base, check=False),
    "parquet_read_verified": lambda base, repeat, data: read_parquet(base, check=True),
    "datasets_load": lambda base, repeat, data: read_datasets(base, check=False, to_pandas=False),
    "datasets_load_verified": lambda base, repeat, data: read_datasets(base, check=True, to_pandas=False),
    "datasets_read": lambda base, repeat, data: read_datasets(base, check=False, to_pandas=True),
    "datasets_read_verified": lambda base, repeat, data: read_datasets(base, check=True, to_pandas=True),
}


def measure(phase: str, base: str, repeat: int = 0) -> dict[str, Any]:
    """One phase in this (fresh) process: seconds, its parts, and its own peak RSS."""
    import lmrec.data.processed  # noqa: F401  (numpy, pandas, pyarrow: what lmrec has loaded anyway)
    from lmrec.runtime.resources import reset_peak_memory

    folder = Path(base)
    if phase == "datasets_import":
        start = time.perf_counter()
        import datasets  # noqa: F401

        return {"seconds": time.perf_counter() - start}
    if phase.startswith("datasets"):
        import datasets

        datasets.disable_progress_bars()
    data = source_data(folder) if phase in WRITES else None
    gc.collect()
    reset_peak_memory()
    before = proc_status()
    start = time.perf_counter()
    parts = RUNNERS[phase](folder, repeat, data)
    seconds = time.perf_counter() - start
    after = proc_status()
    return {
        "seconds": seconds,
        "parts": parts,
        "peak_rss_gb": after.get("peak_gb", 0.0),
        "rss_before_gb": before.get("rss_gb", 0.0),
        "at_end": after,
    }
