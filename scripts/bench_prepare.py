"""Prepare MovieLens-1M- and MovieLens-20M-sized data in the official formats through lmrec's real pipeline.

What is measured
    The script writes synthetic data in the release's exact format into a temporary folder, then times
    `lmrec.data.processed.load_processed` (what `RecDataModule.prepare` calls) on it, with the options of
    `RecDataModule`'s defaults (random 8:1:1 split):

    1m   ML-1M-shaped: `ratings.dat`, `movies.dat` (latin-1 titles, some with accents), `users.dat`, `::`-separated,
         1,000,209 ratings of 6,040 users on 3,706 movies (3,883 listed), every user with >= 20 ratings;
         source `MovieLens1M`.
    20m  ML-20M-shaped: `ratings.csv` (half stars), `movies.csv` (some titles quoted with commas), `tags.csv`,
         20,000,263 ratings of 138,493 users on 26,744 movies (27,278 listed) and 465,564 tags; source
         `MovieLensCSV` with the yaml's options (5 item tags, 5 user tags).

    cold    no processed cache: hash the inputs, read and check every file, build texts, split, write the Parquet
            cache entry;
    cached  the same call in a new process: hash the inputs and read the cache entry.

    Each timing runs in a fresh Python process (imports outside the timing), so its peak RSS (getrusage
    ru_maxrss) is that of the preparation alone, not of writing the data. "Cold" means no lmrec cache; the files
    were just written, so the OS page cache holds them. Targets (issue 10, a 2-core machine): 1m cold <= 20 s,
    cached <= 2 s; 20m cold <= 180 s, cached <= 20 s, peak RSS <= 6 GB. Ratios below 1.0 meet them.
    `--profile` adds a cProfile of the cold run (top functions by cumulative time): where the time goes.

Data
    Users and items are drawn with skewed popularity (weight (rank + 10) ** -0.5 for users, ** -0.8 for items),
    every user and every rated movie appears, and no (user, item) pair repeats (the releases have none).

Usage
    python scripts/bench_prepare.py --shape 1m
    python scripts/bench_prepare.py --shape 20m --json out.json
    python scripts/bench_prepare.py --shape 1m --ratings 200000 --profile
    python scripts/bench_prepare.py --tiny          # both shapes at ~1/500 of their size: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchutil import machine_info, write_json

SRC = Path(__file__).resolve().parents[1] / "src"
#: shape -> ratings, users, rated items, listed movies, tags; targets: cold s, cached s, peak RSS GB
SHAPES = {
    "1m": {"ratings": 1_000_209, "users": 6_040, "items": 3_706, "movies": 3_883, "tags": 0},
    "20m": {"ratings": 20_000_263, "users": 138_493, "items": 26_744, "movies": 27_278, "tags": 465_564},
}
TARGETS = {"1m": {"cold_s": 20.0, "cached_s": 2.0}, "20m": {"cold_s": 180.0, "cached_s": 20.0, "peak_rss_gb": 6.0}}
GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Drama", "Romance", "Sci-Fi", "War")
WORDS = ("night", "love", "return", "dark", "city", "story", "last", "man", "girl", "war", "king", "summer", "lost")


def draw_pairs(rng: np.random.Generator, n: int, users: int, items: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` distinct (user, item) pairs, skewed popularity, every user and item at least once."""
    user_w = (np.arange(users) + 10.0) ** -0.5
    item_w = (np.arange(items) + 10.0) ** -0.8
    user_w, item_w = user_w / user_w.sum(), item_w / item_w.sum()
    base_u = np.concatenate([np.arange(users), rng.choice(users, items, p=user_w)])
    base_i = np.concatenate([rng.choice(items, users, p=item_w), np.arange(items)])
    if n > users * items // 4:
        raise SystemExit(f"{n:,} ratings on {users:,} users x {items:,} items is too dense for this generator")
    keys = np.unique(base_u.astype(np.int64) * items + base_i)
    for rounds in range(1000):
        if len(keys) >= n:
            break
        more = max(2 * (n - len(keys)), 1000)
        # After a few rounds the rare pairs are what is missing: draw those uniformly, so the loop ends.
        pick = rng.choice(items, more, p=item_w) if rounds < 5 else rng.integers(0, items, more)
        drawn = rng.choice(users, more, p=user_w).astype(np.int64) * items + pick
        keys = np.unique(np.concatenate([keys, drawn]))
    first = np.unique(base_u.astype(np.int64) * items + base_i)
    rest = np.setdiff1d(keys, first, assume_unique=True)
    keys = np.concatenate([first, rng.choice(rest, n - len(first), replace=False)])
    keys = keys[rng.permutation(len(keys))]
    user_perm, item_perm = rng.permutation(users), rng.permutation(items)  # popularity unrelated to id
    return user_perm[keys // items] + 1, item_perm[keys % items] + 1


def _title(rng: np.random.Generator, movie: int) -> str:
    words = " ".join(WORDS[k] for k in rng.integers(0, len(WORDS), 1 + movie % 3)).title()
    if movie % 17 == 0:
        words = f"Misérables {movie}, Les"  # accents, and (in CSV) a comma that needs quoting
    return f"{words} ({1920 + movie % 90})"


def _genres(rng: np.random.Generator) -> str:
    return "|".join(GENRES[k] for k in sorted(set(rng.integers(0, len(GENRES), 3))))


def write_1m(root: Path, shape: dict, rng: np.random.Generator) -> None:
    users, items = draw_pairs(rng, shape["ratings"], shape["users"], shape["items"])
    ratings = rng.integers(1, 6, len(users))
    times = 956_703_932 + rng.integers(0, 90_000_000, len(users))
    lines = map("{}::{}::{}::{}\n".format, users.tolist(), items.tolist(), ratings.tolist(), times.tolist())
    (root / "ratings.dat").write_text("".join(lines), encoding="latin-1")
    movies = "".join(f"{m}::{_title(rng, m)}::{_genres(rng)}\n" for m in range(1, shape["movies"] + 1))
    (root / "movies.dat").write_text(movies, encoding="latin-1")
    ages = ("1", "18", "25", "35", "45", "50", "56")
    people = (
        f"{u}::{'MF'[u % 2]}::{ages[u % 7]}::{u % 21}::{10000 + u * 7 % 89999:05d}\n"
        for u in range(1, shape["users"] + 1)
    )
    (root / "users.dat").write_text("".join(people), encoding="latin-1")


def _write_csv(path: Path, header: str, columns: list[np.ndarray], chunk: int = 2_000_000) -> None:
    """Numeric columns as CSV lines, in chunks so that writing 20M rows stays within a few hundred MB."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(header + "\n")
        for start in range(0, len(columns[0]), chunk):
            parts = [c[start : start + chunk].tolist() for c in columns]
            out.write("".join(map(("{}," * (len(parts) - 1) + "{}\n").format, *parts)))


def write_20m(root: Path, shape: dict, rng: np.random.Generator) -> None:
    users, items = draw_pairs(rng, shape["ratings"], shape["users"], shape["items"])
    halves = np.array(["0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0"], dtype=object)
    ratings = halves[rng.integers(0, 10, len(users))]
    times = 789_652_009 + rng.integers(0, 638_000_000, len(users))
    _write_csv(root / "ratings.csv", "userId,movieId,rating,timestamp", [users, items, ratings, times])
    del users, items, ratings, times
    with open(root / "movies.csv", "w", encoding="utf-8", newline="") as out:
        out.write("movieId,title,genres\n")
        for m in range(1, shape["movies"] + 1):
            title = _title(rng, m)
            out.write(f'{m},"{title}",{_genres(rng)}\n' if "," in title else f"{m},{title},{_genres(rng)}\n")
    n = shape["tags"]
    # Some tags hold a comma and are quoted, as in the release: tags.csv then takes the exact csv-module reader.
    tag_words = np.array([f"{a} {b}" for a in WORDS for b in WORDS] + [f'"{a}, {a}"' for a in WORDS], dtype=object)
    tag_users = rng.integers(1, shape["users"] + 1, n)
    tag_items = rng.integers(1, shape["items"] + 1, n)
    tags = tag_words[rng.integers(0, len(tag_words), n)]
    _write_csv(
        root / "tags.csv", "userId,movieId,tag,timestamp", [tag_users, tag_items, tags, 1_137_000_000 + tag_users]
    )
    (root / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0114709,862\n", encoding="utf-8")


def measure(shape: str, root: Path, cache: Path, profile: bool) -> dict:
    """One `load_processed` call in this (fresh) process: seconds, peak RSS, cache hit, sizes."""
    sys.path.insert(0, str(SRC))
    from lmrec.data.datamodule import RecDataModule
    from lmrec.data.processed import load_processed
    from lmrec.data.sources.movielens import MovieLensCSV
    from lmrec.data.sources.movielens_dat import MovieLens1M

    source = MovieLens1M(root) if shape == "1m" else MovieLensCSV(root, max_tags=5, max_user_tags=5)
    options = RecDataModule(source, cache_dir=str(cache)).options
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    data = load_processed(source, cache, options)
    seconds = time.perf_counter() - start
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    return {
        "seconds": seconds,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "cache_hit": data.cache_hit,
        "users": data.num_users,
        "items": data.num_items,
        "interactions": len(data.interactions),
    }


def run_shape(shape: str, sizes: dict, profile: bool, keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench_prepare_{shape}_") as tmp:
        base = keep or Path(tmp)
        root, cache = base / "data", base / "cache"
        root.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        (write_1m if shape == "1m" else write_20m)(root, sizes, np.random.default_rng(0))
        written = {p.name: p.stat().st_size for p in sorted(root.iterdir())}
        print(f"[{shape}] wrote {sizes['ratings']:,} ratings in {time.perf_counter() - start:.1f} s: {written}")
        runs = {}
        for run in ("cold", "cached"):
            args = [sys.executable, __file__, "--measure", shape, str(root), str(cache)]
            child = subprocess.run(
                args + (["--profile"] if profile and run == "cold" else []), capture_output=True, text=True
            )
            if child.returncode != 0:
                raise SystemExit(f"[{shape}] {run} run failed:\n{child.stderr}")
            if profile and run == "cold":
                print(child.stderr, file=sys.stderr)
            runs[run] = json.loads(child.stdout.strip().splitlines()[-1])
            assert runs[run]["cache_hit"] == (run == "cached"), runs[run]
    result = {"shape": shape, **sizes, "bytes": written, "cold": runs["cold"], "cached": runs["cached"]}
    target = TARGETS[shape]
    ratios = {
        "cold_over_target": runs["cold"]["seconds"] / target["cold_s"],
        "cached_over_target": runs["cached"]["seconds"] / target["cached_s"],
    }
    if "peak_rss_gb" in target:
        peak = max(runs["cold"]["peak_rss_gb"], runs["cached"]["peak_rss_gb"])
        ratios["peak_rss_over_target"] = peak / target["peak_rss_gb"]
    result["ratios"] = {k: round(v, 3) for k, v in ratios.items()}
    print(
        f"[{shape}] cold {runs['cold']['seconds']:.2f} s ({ratios['cold_over_target']:.2f} x the "
        f"{target['cold_s']:.0f} s target, peak RSS {runs['cold']['peak_rss_gb']:.2f} GB); cached "
        f"{runs['cached']['seconds']:.2f} s ({ratios['cached_over_target']:.2f} x {target['cached_s']:.0f} s, peak "
        f"RSS {runs['cached']['peak_rss_gb']:.2f} GB)"
        + (f"; peak RSS {ratios['peak_rss_over_target']:.2f} x 6 GB" if "peak_rss_over_target" in ratios else "")
        + f"; {runs['cold']['users']:,} users, {runs['cold']['items']:,} items, {runs['cold']['interactions']:,} rows"
    )
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":  # the child process of one timing
        shape, root, cache = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
        print(json.dumps(measure(shape, root, cache, profile="--profile" in sys.argv)))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append", help="1m and/or 20m (default: both)")
    parser.add_argument("--ratings", type=int, help="number of ratings (users, items, movies, tags scale with it)")
    parser.add_argument("--tiny", action="store_true", help="each shape at 1/500 of its size: check the script runs")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the cold run (stderr)")
    parser.add_argument("--keep", type=Path, help="write the data and cache here instead of a temporary folder")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    results = []
    for shape in args.shape or sorted(SHAPES):
        sizes = dict(SHAPES[shape])
        scale = 1 / 500 if args.tiny else (args.ratings / sizes["ratings"] if args.ratings else 1.0)
        if scale != 1.0:
            # Fewer ratings on fewer users and items (both by the square root of the scale: about the same density).
            sizes = {k: max(int(v * scale), 40 if k != "tags" else 0) for k, v in sizes.items()}
            sizes["users"] = max(int(SHAPES[shape]["users"] * scale**0.5), 20)
            sizes["items"] = max(int(SHAPES[shape]["items"] * scale**0.5), 40)
            sizes["movies"] = int(sizes["items"] * SHAPES[shape]["movies"] / SHAPES[shape]["items"])
        results.append(run_shape(shape, sizes, args.profile, args.keep / shape if args.keep else None))
    write_json(args.json, {"results": results, "machine": machine_info()})


if __name__ == "__main__":
    main()
