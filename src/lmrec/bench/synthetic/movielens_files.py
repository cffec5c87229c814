"""MovieLens-1M- and -20M-shaped release files, written in the releases' exact formats.

1m   `ratings.dat`, `movies.dat` (latin-1 titles, some with accents), `users.dat`, `::`-separated; 1,000,209 ratings
     of 6,040 users on 3,706 movies (3,883 listed), every user with >= 20 ratings.
20m  `ratings.csv` (half stars), `movies.csv` (some titles quoted with commas), `tags.csv` (some tags quoted);
     20,000,263 ratings of 138,493 users on 26,744 movies (27,278 listed) and 465,564 tags.

Users and items are drawn with skewed popularity (weight (rank + 10) ** -0.5 for users, ** -0.8 for items), every
user and every rated movie appears, and no (user, item) pair repeats (the releases have none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: shape -> ratings, users, rated items, listed movies, tags
SHAPES = {
    "ml-1m": {"ratings": 1_000_209, "users": 6_040, "items": 3_706, "movies": 3_883, "tags": 0},
    "ml-20m": {"ratings": 20_000_263, "users": 138_493, "items": 26_744, "movies": 27_278, "tags": 465_564},
}
GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Drama", "Romance", "Sci-Fi", "War")
WORDS = ("night", "love", "return", "dark", "city", "story", "last", "man", "girl", "war", "king", "summer", "lost")


def scaled(shape: str, scale: float) -> dict[str, int]:
    """Sizes at `scale`: fewer ratings on fewer users and items (by the square root: about the same density)."""
    full = SHAPES[shape]
    if scale == 1.0:
        return dict(full)
    sizes = {k: max(int(v * scale), 40 if k != "tags" else 0) for k, v in full.items()}
    sizes["users"] = max(int(full["users"] * scale**0.5), 20)
    sizes["items"] = max(int(full["items"] * scale**0.5), 40)
    sizes["movies"] = int(sizes["items"] * full["movies"] / full["items"])
    return sizes


def draw_pairs(rng: np.random.Generator, n: int, users: int, items: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` distinct (user, item) pairs (1-based ids), skewed popularity, every user and item at least once."""
    user_w = (np.arange(users) + 10.0) ** -0.5
    item_w = (np.arange(items) + 10.0) ** -0.8
    user_w, item_w = user_w / user_w.sum(), item_w / item_w.sum()
    base_u = np.concatenate([np.arange(users), rng.choice(users, items, p=user_w)])
    base_i = np.concatenate([rng.choice(items, users, p=item_w), np.arange(items)])
    if n > users * items // 4:
        raise ValueError(f"{n:,} ratings on {users:,} users x {items:,} items is too dense for this generator")
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


def write_1m(root: Path, shape: dict[str, Any], rng: np.random.Generator) -> None:
    """ratings.dat, movies.dat and users.dat as ML-1M has them (`::`, latin-1)."""
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
    """Columns as CSV lines, in chunks so that writing 20M rows stays within a few hundred MB."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(header + "\n")
        for start in range(0, len(columns[0]), chunk):
            parts = [c[start : start + chunk].tolist() for c in columns]
            out.write("".join(map(("{}," * (len(parts) - 1) + "{}\n").format, *parts)))


def write_20m(root: Path, shape: dict[str, Any], rng: np.random.Generator) -> None:
    """ratings.csv, movies.csv, tags.csv and links.csv as ML-20M has them."""
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


def write_movielens(shape: str, root: Path, sizes: dict[str, Any], seed: int = 0) -> None:
    """The files of `shape` ("ml-1m" or "ml-20m") at `sizes` into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (write_1m if shape == "ml-1m" else write_20m)(root, sizes, np.random.default_rng(seed))
