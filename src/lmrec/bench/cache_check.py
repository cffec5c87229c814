"""The untimed check of the cache-format benchmark: timings alone would hide a format that is fast because it hands
back something else (other dtypes, a view into a file rather than a copy, damaged bytes passed through).

It reads both entries back and compares them with the tables written (values and dtypes), looks at whether
`load_from_disk` really maps the file and whether `.to_pandas()` copies out of the map, and flips one byte in the
middle of each format's largest file: the manifest must notice, and an unchecked read shows what the format would
do on its own. Runs in a fresh process (`lmrec.bench.child`); without `datasets`, Parquet only.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmrec.bench.cache_phases import TABLES, entry, load_datasets


def difference(got: Any, want: Any) -> str | None:
    """Why two frames differ (pandas' own message, shortened), or None: a round trip must be exact."""
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(got, want)
    except AssertionError as err:
        return " ".join(str(err).split())[:200]
    return None


def mapped(address: int, folder: Path) -> bool:
    """Whether `address` lies in a mapping of a file under `folder`: the direct test of "memory-mapped"."""
    prefix = str(folder.resolve())
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5].startswith(prefix):
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= address < high:
                return True
    return False


def flip_byte(folder: Path, read: Callable[[Path], dict], want: dict) -> dict[str, Any]:
    """Flip one byte in the middle of the largest file (then restore it): does the manifest notice, and what does
    an unchecked read do (a format that noticed by itself would not need lmrec's hashing)?"""
    from lmrec.cache_integrity import MANIFEST, check_manifest

    files = [p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST]
    target = max(files, key=lambda p: p.stat().st_size)
    offset = target.stat().st_size // 2
    with open(target, "r+b") as handle:
        handle.seek(offset)
        original = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([original[0] ^ 0xFF]))
    try:
        detected = check_manifest(folder / MANIFEST) is not None
        try:
            got = read(folder)
            changed = [name for name in TABLES if not got[name].equals(want[name])]
            unchecked = f"read silently, {', '.join(changed)} changed" if changed else "read silently, unchanged"
        except Exception as err:  # what the format itself does with a damaged file
            unchecked = f"raised {type(err).__name__}: {' '.join(str(err).split())[:120]}"
    finally:
        with open(target, "r+b") as handle:
            handle.seek(offset)
            handle.write(original)
    return {
        "file": str(target.relative_to(folder)),
        "offset": offset,
        "manifest_detects": detected,
        "unchecked": unchecked,
    }


def datasets_api(base: Path) -> dict[str, Any]:
    """Whether `load_from_disk` maps the Arrow files, and whether `.to_pandas()` copies out of the map."""
    import datasets

    folder = entry(base, "datasets") / "interactions"
    lazy = datasets.load_from_disk(str(folder))
    table = lazy.data.table
    frame = lazy.to_pandas()
    items_folder = entry(base, "datasets") / "items"
    items = datasets.load_from_disk(str(items_folder))
    text = items.to_pandas()["text"].array
    out = {
        "table_class": type(lazy.data).__name__,
        "arrow_files": [str(Path(f["filename"]).relative_to(base)) for f in lazy.cache_files],
        "record_batches": table.column("user_idx").num_chunks,
        "features": {k: str(v) for k, v in lazy.features.items()},
        "text_feature": str(items.features["text"]),
        "buffers_memory_mapped": mapped(table.column("user_idx").chunks[0].buffers()[1].address, folder),
        "to_pandas_numeric_in_map": mapped(frame["user_idx"].to_numpy().__array_interface__["data"][0], folder),
        "to_pandas_text_array": type(text).__name__,
    }
    with contextlib.suppress(AttributeError, IndexError):  # pandas' Arrow-backed strings may point into the map
        out["to_pandas_text_in_map"] = mapped(text._pa_array.chunks[0].buffers()[-1].address, items_folder)
    return out


def check(base: str) -> dict[str, Any]:
    """Round trip, mapping and flipped-byte checks of both formats (Parquet only without `datasets`)."""
    import pandas as pd

    base_path = Path(base)
    with open(base_path / "source.pkl", "rb") as handle:
        want = pickle.load(handle)
    readers: dict[str, Callable[[Path], dict]] = {
        "parquet": lambda folder: {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}
    }
    if importlib.util.find_spec("datasets") is not None:
        import datasets

        datasets.disable_progress_bars()
        readers["datasets"] = lambda folder: load_datasets(folder, {}, to_pandas=True)
    out: dict[str, Any] = {}
    for fmt, read in readers.items():
        got = read(entry(base_path, fmt))
        out[fmt] = {
            "dtypes": {name: {c: str(t) for c, t in got[name].dtypes.items()} for name in TABLES},
            "differences": {name: d for name in TABLES if (d := difference(got[name], want[name]))},
        }
        del got
    if "datasets" in readers:
        out["datasets_api"] = datasets_api(base_path)
    gc.collect()
    out["flipped_byte"] = {fmt: flip_byte(entry(base_path, fmt), read, want) for fmt, read in readers.items()}
    return out
