"""Should lmrec's processed-data cache keep its own Parquet files, or move to HF `datasets`' Arrow storage?

Why this exists
    `lmrec.data.processed` caches the processed tables (interactions, users, items) as three Parquet files plus
    `key.json`, sealed with a SHA-256 manifest (`lmrec.cache_integrity.seal_dir`); every cache hit checks every
    byte (`verified_entry`) and then reads the three files into pandas (`_read_entry`), because the datamodule
    works on pandas/numpy. `datasets` promises memory-mapped, zero-parse loading; this script measures whether that
    promise survives lmrec's two constraints: the tables must end up as pandas frames, and a flipped byte must be
    detected whatever the format (so the lazy loader still has to read every byte once for the SHA-256).

What is measured (each timing in a fresh Python process; imports and data generation are outside the timing)
    parquet_write            lmrec's own `_write_entry` (to_parquet x3, key.json, seal_dir), unchanged;
    datasets_write           the same entry written as `Dataset.from_pandas(df).save_to_disk(entry/<table>)` per
                             table, key.json, the same seal_dir over every file datasets writes;
    parquet_read             `_read_entry` alone: three Parquet files -> pandas;
    parquet_read_verified    `verified_entry` + `_read_entry` under `entry_lock`: today's cache hit, exactly;
    datasets_load            `datasets.load_from_disk` x3 (memory-mapped, nothing parsed into pandas);
    datasets_load_verified   the same after `verified_entry`: the cheapest datasets hit that keeps the guarantee;
    datasets_read            `load_from_disk` + `.to_pandas()` x3: what lmrec would need instead of `_read_entry`;
    datasets_read_verified   the same after `verified_entry`: the like-for-like replacement of today's cache hit;
    datasets_import          `import datasets` on top of `lmrec.data.processed` (numpy, pandas, pyarrow already
                             loaded): a cost every run would pay, reported apart from the timings above.

    Peak RSS is VmHWM (/proc/self/status) after the high-water mark is reset (`/proc/self/clear_refs`) just before the
    timed phase, so it is the phase's own peak (plus what the process already held: the tables, for a write).
    RssFile at the end shows how much of it is memory-mapped file pages rather than heap. Files were just written,
    so every read is served from the OS page cache (no cold-disk reads; lmrec's cache hits usually are too).
    Ratios are against the Parquet phase of the same kind measured in the same run ("datasets / parquet = 1.40x").

    A last, untimed check reads both entries back and compares them with the tables written (values and dtypes),
    looks at whether `load_from_disk` really maps the file and whether `.to_pandas()` copies out of the map, and
    flips one byte in the middle of each format's largest file: the manifest must notice, and an unchecked read
    shows what each format would do on its own.

Data
    Synthetic tables with the dtypes lmrec stores: interactions user_idx int64, item_idx int64, rating float32,
    timestamp int64, split int8 (random 8:1:1 codes), ordered by user then item as the MovieLens files are (row
    order drives Parquet's run-length encoding); users user_id int64; items item_id int64 and a 60-120 character
    text (a few with accents). Users and items have skewed popularity; every user and item appears.

    20m  20,000,263 interactions, 138,493 users, 26,744 items (ML-20M after processing, half-star ratings);
    1m    1,000,209 interactions,   6,040 users,  3,706 items (ML-1M, whole-star ratings).

Usage
    python scripts/bench_cache_format.py                      # --shape 20m, 3 repeats (median)
    python scripts/bench_cache_format.py --shape 1m --shape 20m --json out.json
    python scripts/bench_cache_format.py --tiny               # both shapes at ~1/500, 1 repeat: checks the script runs
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchutil import machine_info, write_json

SRC = Path(__file__).resolve().parents[1] / "src"
TABLES = ("interactions", "users", "items")
SHAPES = {
    "1m": {"interactions": 1_000_209, "users": 6_040, "items": 3_706, "half_stars": False},
    "20m": {"interactions": 20_000_263, "users": 138_493, "items": 26_744, "half_stars": True},
}
FORMATS = ("parquet", "datasets")
#: phase -> (row label, the Parquet phase it is compared with)
PHASES = {
    "parquet_write": ("write   parquet, lmrec's _write_entry (+ seal)", "parquet_write"),
    "datasets_write": ("write   datasets from_pandas + save_to_disk (+ seal)", "parquet_write"),
    "parquet_read": ("read    parquet -> pandas", "parquet_read"),
    "parquet_read_verified": ("hit     parquet SHA-256 + -> pandas (today)", "parquet_read_verified"),
    "datasets_load": ("load    datasets load_from_disk (lazy)", "parquet_read"),
    "datasets_load_verified": ("hit     datasets SHA-256 + load_from_disk (lazy)", "parquet_read_verified"),
    "datasets_read": ("read    datasets load_from_disk + to_pandas", "parquet_read"),
    "datasets_read_verified": ("hit     datasets SHA-256 + load + to_pandas", "parquet_read_verified"),
}
WRITES = ("parquet_write", "datasets_write")
READS = tuple(p for p in PHASES if p not in WRITES)
WORDS = ("night", "love", "return", "dark", "city", "story", "last", "man", "girl", "war", "king", "summer", "lost")
WORDS += ("Adventure", "Animation", "Comedy", "Drama", "Sci-Fi", "pixar", "quirky", "Misérables", "Amélie")
WORDS_ARRAY = np.array(WORDS, dtype=object)


# --- data --------------------------------------------------------------------------------------------------------


def make_tables(sizes: dict, seed: int = 0) -> dict:
    """Tables with the dtypes, row order and skew of a processed MovieLens entry: what Parquet's encodings and
    Arrow's raw buffers are sensitive to, so sizes and speeds carry over to the real cache."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n, users, items = sizes["interactions"], sizes["users"], sizes["items"]
    user_w = (np.arange(users) + 10.0) ** -0.5
    item_w = (np.arange(items) + 10.0) ** -0.8
    user = np.concatenate([np.arange(users), rng.choice(users, n - users, p=user_w / user_w.sum())])
    item = np.concatenate([np.arange(items), rng.choice(items, n - items, p=item_w / item_w.sum())])
    item = rng.permutation(items)[rng.permutation(item)]  # popularity unrelated to index, items unrelated to users
    order = np.lexsort((item, user))
    stars = rng.integers(1, 11, n) / 2 if sizes["half_stars"] else rng.integers(1, 6, n)
    interactions = pd.DataFrame(
        {
            "user_idx": user[order].astype(np.int64),
            "item_idx": item[order].astype(np.int64),
            "rating": stars.astype(np.float32),
            "timestamp": 789_652_009 + rng.integers(0, 638_000_000, n, dtype=np.int64),
            "split": rng.choice(3, n, p=[0.8, 0.1, 0.1]).astype(np.int8),
        }
    )
    del user, item, order, stars
    texts = []
    for length in rng.integers(60, 121, items):
        words = WORDS_ARRAY[rng.integers(0, len(WORDS), 30)]
        texts.append(" ".join(words)[:length].rstrip())
    return {
        "interactions": interactions,
        "users": pd.DataFrame({"user_id": np.arange(1, users + 1, dtype=np.int64)}),
        "items": pd.DataFrame(
            {"item_id": np.sort(rng.choice(items * 5, items, replace=False)).astype(np.int64) + 1, "text": texts}
        ),
    }


def scaled(shape: str, tiny: bool) -> dict:
    sizes = dict(SHAPES[shape])
    if tiny:  # fewer interactions on fewer users and items (by the square root: about the same density)
        scale = 1 / 500
        sizes["interactions"] = int(sizes["interactions"] * scale)
        sizes["users"] = max(int(sizes["users"] * scale**0.5), 20)
        sizes["items"] = max(int(sizes["items"] * scale**0.5), 40)
    return sizes


# --- the child process of one timing -----------------------------------------------------------------------------


def _entry(base: Path, fmt: str, repeat: int = 0) -> Path:
    return base / fmt / f"w{repeat}"


def _proc_status() -> dict:
    """Current RSS split into heap and mapped-file pages: a memory-mapped table shows up as RssFile, which the
    kernel can drop under pressure, unlike the heap copy of a parsed table."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = {"VmRSS": "rss_gb", "VmHWM": "peak_gb", "RssAnon": "rss_anon_gb", "RssFile": "rss_file_gb"}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in fields:
            out[fields[key]] = round(int(value.split()[0]) / 1024**2, 3)
    return out


def _reset_peak() -> bool:
    """Reset the RSS high-water mark, so ru_maxrss after the phase is the phase's peak rather than that of the
    imports or of generating the tables."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _timed(parts: dict, name: str, fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    parts[name] = parts.get(name, 0.0) + time.perf_counter() - start
    return out


def _data(base: Path):
    from lmrec.data.processed import ProcessedData

    with open(base / "source.pkl", "rb") as handle:
        return ProcessedData(**pickle.load(handle))


def write_parquet(base: Path, repeat: int, data) -> dict:
    import lmrec.data.processed as processed

    parts: dict = {}
    real_seal = processed.seal_dir
    processed.seal_dir = lambda folder: _timed(parts, "seal_s", real_seal, folder)  # looked up when called
    try:
        processed._write_entry(_entry(base, "parquet", repeat), data, {}, {})
    finally:
        processed.seal_dir = real_seal
    return parts


def write_datasets(base: Path, repeat: int, data) -> dict:
    """`_write_entry` with save_to_disk in place of to_parquet: same temporary folder, key.json and manifest, so
    the two writes differ only in the table format."""
    import datasets

    from lmrec.atomic import publish_dir
    from lmrec.cache_integrity import seal_dir

    parts: dict = {}
    with publish_dir(_entry(base, "datasets", repeat)) as tmp:
        for name in TABLES:
            convert = lambda frame: datasets.Dataset.from_pandas(frame, preserve_index=False)  # noqa: E731
            table = _timed(parts, "from_pandas_s", convert, getattr(data, name))
            _timed(parts, "save_to_disk_s", table.save_to_disk, str(tmp / name))
        meta = {"inputs": {}, "options": {}, "dropped": data.dropped, "filters": data.filters}
        (tmp / "key.json").write_text(json.dumps(meta, indent=2, default=str))
        _timed(parts, "seal_s", seal_dir, tmp)
    return parts


def _verify(entry: Path, parts: dict) -> None:
    from lmrec.cache_integrity import verified_entry

    if not _timed(parts, "verify_s", verified_entry, entry, "processed-data"):
        raise SystemExit(f"{entry} failed its manifest check")


def read_parquet(base: Path, verify: bool) -> dict:
    from lmrec.cache_integrity import entry_lock
    from lmrec.data.processed import _read_entry

    entry, parts = _entry(base, "parquet"), {}
    with entry_lock(entry):
        if verify:
            _verify(entry, parts)
        data = _timed(parts, "read_s", _read_entry, entry)
    if data is None:
        raise SystemExit(f"{entry} did not read")
    parts["rows"] = len(data.interactions)
    return parts


def load_datasets(entry: Path, parts: dict, to_pandas: bool) -> dict:
    import datasets

    json.loads((entry / "key.json").read_text())  # read on every hit, as _read_entry does
    loaded = {name: _timed(parts, "load_s", datasets.load_from_disk, str(entry / name)) for name in TABLES}
    if not to_pandas:
        return loaded
    return {name: _timed(parts, "to_pandas_s", table.to_pandas) for name, table in loaded.items()}


def read_datasets(base: Path, verify: bool, to_pandas: bool) -> dict:
    from lmrec.cache_integrity import entry_lock

    entry, parts = _entry(base, "datasets"), {}
    with entry_lock(entry):
        if verify:
            _verify(entry, parts)
        tables = load_datasets(entry, parts, to_pandas)
    parts["rows"] = len(tables["interactions"])
    return parts


RUNNERS = {
    "parquet_write": write_parquet,
    "datasets_write": write_datasets,
    "parquet_read": lambda base, repeat, data: read_parquet(base, verify=False),
    "parquet_read_verified": lambda base, repeat, data: read_parquet(base, verify=True),
    "datasets_load": lambda base, repeat, data: read_datasets(base, verify=False, to_pandas=False),
    "datasets_load_verified": lambda base, repeat, data: read_datasets(base, verify=True, to_pandas=False),
    "datasets_read": lambda base, repeat, data: read_datasets(base, verify=False, to_pandas=True),
    "datasets_read_verified": lambda base, repeat, data: read_datasets(base, verify=True, to_pandas=True),
}


def measure(phase: str, base: Path, repeat: int) -> dict:
    sys.path.insert(0, str(SRC))
    import lmrec.data.processed  # noqa: F401  (numpy, pandas, pyarrow: what lmrec has loaded anyway)

    if phase == "datasets_import":
        start = time.perf_counter()
        import datasets  # noqa: F401

        return {"seconds": time.perf_counter() - start}
    if phase.startswith("datasets"):
        import datasets

        datasets.disable_progress_bars()
    data = _data(base) if phase in WRITES else None
    gc.collect()
    reset = _reset_peak()
    before = _proc_status()
    start = time.perf_counter()
    parts = RUNNERS[phase](base, repeat, data)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "parts": parts,
        # VmHWM, not ru_maxrss: clear_refs resets the former only (getrusage keeps the process's lifetime peak).
        "peak_rss_gb": _proc_status().get(
            "peak_gb", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3)
        ),
        "peak_reset": reset,
        "rss_before_gb": before.get("rss_gb"),
        "at_end": _proc_status(),
    }


# --- the untimed check -------------------------------------------------------------------------------------------


def _difference(got, want) -> str | None:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(got, want)
    except AssertionError as err:
        return " ".join(str(err).split())[:200]
    return None


def _mapped(address: int, entry: Path) -> bool:
    """Whether `address` lies in a mapping of a file under `entry`: the direct test of "memory-mapped"."""
    prefix = str(entry.resolve())
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[5].startswith(prefix):
            low, high = (int(x, 16) for x in fields[0].split("-"))
            if low <= address < high:
                return True
    return False


def _flip(entry: Path, read, want: dict) -> dict:
    """A format whose files the manifest did not fully cover would make a switch unsafe; the unchecked read shows
    whether the format would notice damage on its own (the reason lmrec hashes at all)."""
    from lmrec.cache_integrity import MANIFEST, check_manifest

    files = [p for p in entry.rglob("*") if p.is_file() and p.name != MANIFEST]
    target = max(files, key=lambda p: p.stat().st_size)
    offset = target.stat().st_size // 2
    with open(target, "r+b") as handle:
        handle.seek(offset)
        original = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([original[0] ^ 0xFF]))
    try:
        detected = check_manifest(entry / MANIFEST) is not None
        try:
            got = read(entry)
            changed = [name for name in TABLES if not got[name].equals(want[name])]
            unchecked = f"read silently, {', '.join(changed)} changed" if changed else "read silently, unchanged"
        except Exception as err:  # what the format itself does with a damaged file
            unchecked = f"raised {type(err).__name__}: {' '.join(str(err).split())[:120]}"
    finally:
        with open(target, "r+b") as handle:
            handle.seek(offset)
            handle.write(original)
    return {
        "file": str(target.relative_to(entry)),
        "offset": offset,
        "manifest_detects": detected,
        "unchecked": unchecked,
    }


def check(base: Path) -> dict:
    """Timings alone would hide a format that is fast because it hands back something else: other dtypes, a view
    into a file rather than a copy, or damaged bytes passed through."""
    sys.path.insert(0, str(SRC))
    import datasets
    import pandas as pd

    datasets.disable_progress_bars()
    with open(base / "source.pkl", "rb") as handle:
        want = pickle.load(handle)

    def parquet(entry: Path) -> dict:
        return {name: pd.read_parquet(entry / f"{name}.parquet") for name in TABLES}

    def arrow(entry: Path) -> dict:
        return load_datasets(entry, {}, to_pandas=True)

    out: dict = {}
    for fmt, read in (("parquet", parquet), ("datasets", arrow)):
        got = read(_entry(base, fmt))
        out[fmt] = {
            "dtypes": {name: {c: str(t) for c, t in got[name].dtypes.items()} for name in TABLES},
            "differences": {name: d for name in TABLES if (d := _difference(got[name], want[name]))},
        }
        del got
    entry = _entry(base, "datasets") / "interactions"
    lazy = datasets.load_from_disk(str(entry))
    table = lazy.data.table
    frame = lazy.to_pandas()
    items_entry = _entry(base, "datasets") / "items"
    items = datasets.load_from_disk(str(items_entry))
    text = items.to_pandas()["text"].array
    out["datasets_api"] = {
        "table_class": type(lazy.data).__name__,
        "arrow_files": [str(Path(f["filename"]).relative_to(base)) for f in lazy.cache_files],
        "record_batches": table.column("user_idx").num_chunks,
        "features": {k: str(v) for k, v in lazy.features.items()},
        "text_feature": str(items.features["text"]),
        "buffers_memory_mapped": _mapped(table.column("user_idx").chunks[0].buffers()[1].address, entry),
        "to_pandas_numeric_in_map": _mapped(frame["user_idx"].to_numpy().__array_interface__["data"][0], entry),
        "to_pandas_text_array": type(text).__name__,
    }
    try:  # pandas' Arrow-backed strings may keep pointing into the map (private attribute: best effort)
        chunk = text._pa_array.chunks[0]
        out["datasets_api"]["to_pandas_text_in_map"] = _mapped(chunk.buffers()[-1].address, items_entry)
    except (AttributeError, IndexError):
        pass
    del lazy, table, frame, items, text
    gc.collect()
    out["flipped_byte"] = {"parquet": _flip(_entry(base, "parquet"), parquet, want)}
    out["flipped_byte"]["datasets"] = _flip(_entry(base, "datasets"), arrow, want)
    return out


# --- the parent --------------------------------------------------------------------------------------------------


def child(phase: str, base: Path, repeat: int = 0) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    args = [sys.executable, __file__, "--measure", phase, str(base), str(repeat)]
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{phase} (repeat {repeat}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def on_disk(entry: Path) -> dict:
    return {str(p.relative_to(entry)): p.stat().st_size for p in sorted(entry.rglob("*")) if p.is_file()}


def summarize(runs: list[dict]) -> dict:
    seconds = [r["seconds"] for r in runs]
    out = {"seconds": statistics.median(seconds), "seconds_all": [round(s, 4) for s in seconds]}
    if "peak_rss_gb" in runs[0]:
        out["peak_rss_gb"] = max(r["peak_rss_gb"] for r in runs)
        out["rss_before_gb"] = runs[0]["rss_before_gb"]
        out["at_end"] = runs[-1]["at_end"]
        out["parts"] = {k: round(statistics.median(r["parts"][k] for r in runs), 4) for k in runs[0]["parts"]}
    return out


def run_shape(shape: str, sizes: dict, repeats: int, keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench_cache_format_{shape}_") as tmp:
        base = keep or Path(tmp)
        shutil.rmtree(base / "parquet", ignore_errors=True)
        shutil.rmtree(base / "datasets", ignore_errors=True)
        base.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        tables = make_tables(sizes)
        with open(base / "source.pkl", "wb") as handle:
            pickle.dump(tables, handle, protocol=5)
        del tables
        gc.collect()
        print(f"[{shape}] generated {sizes['interactions']:,} interactions in {time.perf_counter() - start:.1f} s")
        runs: dict = {p: [] for p in (*PHASES, "datasets_import")}
        for repeat in range(repeats):  # interleaved, so a load change on a shared machine hits both formats
            for phase in WRITES:
                runs[phase].append(child(phase, base, repeat))
                if repeat:
                    shutil.rmtree(_entry(base, phase.split("_")[0], repeat))
        disk = {fmt: on_disk(_entry(base, fmt)) for fmt in FORMATS}
        for _ in range(repeats):
            for phase in (*READS, "datasets_import"):
                runs[phase].append(child(phase, base))
        checked = child("check", base)
        (base / "source.pkl").unlink()
    phases = {p: summarize(r) for p, r in runs.items()}
    result = {"shape": shape, **sizes, "repeats": repeats, "phases": phases, "disk_bytes": disk, "check": checked}
    result["ratios"] = ratios(phases, disk)
    report(shape, sizes, repeats, result)
    return result


def ratios(phases: dict, disk: dict) -> dict:
    out = {}
    for phase, (_, baseline) in PHASES.items():
        out[f"{phase}_seconds"] = round(phases[phase]["seconds"] / phases[baseline]["seconds"], 3)
        out[f"{phase}_peak_rss"] = round(phases[phase]["peak_rss_gb"] / phases[baseline]["peak_rss_gb"], 3)
    out["disk"] = round(sum(disk["datasets"].values()) / sum(disk["parquet"].values()), 3)
    hit = phases["parquet_read_verified"]["seconds"]
    out["hit_with_import_seconds"] = round(
        (phases["datasets_read_verified"]["seconds"] + phases["datasets_import"]["seconds"]) / hit, 3
    )
    return out


def report(shape: str, sizes: dict, repeats: int, result: dict) -> None:
    phases, ratio, check_ = result["phases"], result["ratios"], result["check"]
    print(
        f"[{shape}] {sizes['interactions']:,} interactions, {sizes['users']:,} users, {sizes['items']:,} items; "
        f"median of {repeats} run(s), warm page cache; ratios: datasets / parquet of the same kind"
    )
    print(
        f"  {'phase':<52} {'seconds':>8} {'ratio':>7} {'peak RSS GB':>12} {'ratio':>7} {'held before':>12} "
        f"{'file-mapped at end':>19}"
    )
    for phase, (label, _) in PHASES.items():
        p = phases[phase]
        print(
            f"  {label:<52} {p['seconds']:8.3f} {ratio[phase + '_seconds']:6.2f}× {p['peak_rss_gb']:12.3f} "
            f"{ratio[phase + '_peak_rss']:6.2f}× {p['rss_before_gb'] or float('nan'):12.3f} "
            f"{p['at_end'].get('rss_file_gb', float('nan')):19.3f}"
        )
    imp, hit = phases["datasets_import"]["seconds"], phases["parquet_read_verified"]["seconds"]
    print(f"  {'import  datasets (on top of lmrec.data.processed)':<52} {imp:8.3f}   (+{imp / hit:.0%} of today's hit)")
    mb = {fmt: sum(result["disk_bytes"][fmt].values()) / 1e6 for fmt in FORMATS}
    print(f"  on disk: parquet {mb['parquet']:.1f} MB, datasets {mb['datasets']:.1f} MB ({ratio['disk']:.2f}×)")
    for phase in ("parquet_write", "datasets_write", "parquet_read_verified", "datasets_read_verified"):
        parts = ", ".join(f"{k} {v:.3f}" for k, v in phases[phase]["parts"].items() if k.endswith("_s"))
        print(f"  {phase}: {parts}")
    api = check_["datasets_api"]
    diffs = {fmt: check_[fmt]["differences"] or "identical" for fmt in FORMATS}
    print(f"  round trip vs the tables written: parquet {diffs['parquet']}, datasets {diffs['datasets']}")
    print(
        f"  datasets: {api['table_class']} over {len(api['arrow_files'])} file(s), {api['record_batches']} record "
        f"batches; buffers memory-mapped: {api['buffers_memory_mapped']}; to_pandas numeric columns still in the "
        f"map: {api['to_pandas_numeric_in_map']}; text -> {api['to_pandas_text_array']}"
        + (f" (in the map: {api['to_pandas_text_in_map']})" if "to_pandas_text_in_map" in api else "")
    )
    for fmt in FORMATS:
        flip = check_["flipped_byte"][fmt]
        print(
            f"  flipped byte in {fmt} {flip['file']}@{flip['offset']}: manifest detects: {flip['manifest_detects']}; "
            f"without it: {flip['unchecked']}"
        )
    print(
        f"  => a cache hit through datasets (SHA-256 + load + to_pandas + import) takes "
        f"{ratio['hit_with_import_seconds']:.2f}× today's; lazy load with the check "
        f"{ratio['datasets_load_verified_seconds']:.2f}× (but gives Arrow tables, not pandas)"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":  # the child process of one timing
        phase, base, repeat = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(check(base) if phase == "check" else measure(phase, base, repeat)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append", help="1m and/or 20m (default: 20m)")
    parser.add_argument("--tiny", action="store_true", help="each shape at ~1/500 of its size, 1 repeat (both shapes)")
    parser.add_argument("--repeats", type=int, help="fresh processes per phase, median reported (default 3; tiny 1)")
    parser.add_argument("--keep", type=Path, help="write the entries here instead of a temporary folder")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if importlib.util.find_spec("datasets") is None:
        raise SystemExit("HF datasets is not installed in this environment: pip install datasets")
    import datasets
    import pandas as pd
    import pyarrow as pa

    shapes = args.shape or (sorted(SHAPES) if args.tiny else ["20m"])
    repeats = args.repeats or (1 if args.tiny else 3)
    results = [
        run_shape(shape, scaled(shape, args.tiny), repeats, args.keep / shape if args.keep else None)
        for shape in shapes
    ]
    versions = {"datasets": datasets.__version__, "pyarrow": pa.__version__, "pandas": pd.__version__}
    write_json(args.json, {"results": results, "versions": versions, "machine": machine_info()})


if __name__ == "__main__":
    main()
