"""MovieLens in the CSV layout of ml-latest-small (also ml-latest, 20M, 25M, 32M): ratings, movies, tags.

Files: `ratings.csv` (userId,movieId,rating,timestamp), `movies.csv` (movieId,title,genres with `|` between
genres), optional `tags.csv` (userId,movieId,tag,timestamp); UTF-8, one header row, titles may hold quoted commas
and even line breaks. Item text fields: `title`, `genres` (", "-joined; empty for "(no genres listed)") and
`tags` (the item's `max_tags` most frequent tags, lower-cased).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmrec.data.io.checks import RowChecks, take
from lmrec.data.io.readers import TextFormat, read_text_table
from lmrec.data.sources.base import RatingScale, Source, SourceTables, interactions_from

log = logging.getLogger(__name__)

RATINGS_FILE, MOVIES_FILE, TAGS_FILE = "ratings.csv", "movies.csv", "tags.csv"
NO_GENRES = "(no genres listed)"
CSV = TextFormat()


@dataclass
class MovieLensTables:
    """The parsed files with the original ids and file row order: `ratings` (user_id, item_id, rating float32,
    timestamp), `movies` (item_id, title, genres as in the file), `tags` (user_id, item_id, tag, timestamp; empty
    without tags.csv)."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    tags: pd.DataFrame
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)


def read_movielens_csv(
    root: Path, scale: RatingScale, *, with_tags: bool = True, drop_invalid: bool = False
) -> MovieLensTables:
    """Parse and validate the files; movies first, since ratings and tags must name a known movie."""
    root = Path(root)
    dropped: dict[str, dict[str, int]] = {}
    raw = read_text_table(root / MOVIES_FILE, CSV, ("movieId", "title", "genres"))
    checks = RowChecks(raw)
    item_ids = checks.unique_ids("movieId", "an integer movie id")
    keep = checks.resolve(drop_invalid, dropped)
    movies = pd.DataFrame(
        {
            "item_id": take(item_ids, keep),
            "title": checks.strings("title", keep),
            "genres": checks.strings("genres", keep),
        }
    )
    known = movies["item_id"].to_numpy()
    raw = read_text_table(root / RATINGS_FILE, CSV, ("userId", "movieId", "rating", "timestamp"))
    ratings = interactions_from(
        raw,
        ("userId", "movieId", "rating", "timestamp"),
        known,
        MOVIES_FILE,
        scale,
        drop_invalid,
        dropped,
        what=("an integer user id", "an integer movie id"),
    )
    tags = _read_tags(root / TAGS_FILE, known, drop_invalid, dropped) if with_tags else _empty_tags()
    return MovieLensTables(ratings=ratings, movies=movies, tags=tags, dropped=dropped)


def _read_tags(path: Path, known: np.ndarray, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> pd.DataFrame:
    checks = RowChecks(read_text_table(path, CSV, ("userId", "movieId", "tag", "timestamp")))
    user_ids = checks.integers("userId", "an integer user id")
    item_ids = checks.integers("movieId", "an integer movie id")
    timestamps = checks.integers("timestamp", "an integer Unix timestamp")
    checks.known(
        "movieId",
        item_ids,
        known,
        "unknown item",
        lambda i: f"unknown item: movieId {item_ids[i]} is not in {MOVIES_FILE}",
    )
    keep = checks.resolve(drop_invalid, dropped)
    return pd.DataFrame(
        {
            "user_id": take(user_ids, keep),
            "item_id": take(item_ids, keep),
            "tag": checks.strings("tag", keep),
            "timestamp": take(timestamps, keep),
        }
    )


def _empty_tags() -> pd.DataFrame:
    empty = np.empty(0, dtype=np.int64)
    return pd.DataFrame({"user_id": empty, "item_id": empty, "tag": pd.Series([], dtype=str), "timestamp": empty})


def top_tags(tags: pd.DataFrame, max_tags: int) -> dict[int, str]:
    """Each item's most frequent tags (case-insensitive; ties broken alphabetically for reproducibility)."""
    if max_tags <= 0 or tags.empty:
        return {}
    frame = pd.DataFrame({"item_id": tags["item_id"], "tag": tags["tag"].str.strip().str.lower()})
    frame = frame[frame["tag"] != ""]
    counts = frame.groupby(["item_id", "tag"]).size().reset_index(name="n")
    counts = counts.sort_values(["item_id", "n", "tag"], ascending=[True, False, True])
    best = counts.groupby("item_id").head(max_tags)
    return best.groupby("item_id")["tag"].agg(", ".join).to_dict()


def item_fields(movies: pd.DataFrame, tags: pd.DataFrame, max_tags: int) -> pd.DataFrame:
    """The items table of the contract: item_id, title, genres, tags (all str)."""
    item_tags = top_tags(tags, max_tags)
    genres = [
        ("" if g == NO_GENRES else ", ".join(part for part in str(g).split("|") if part)) for g in movies["genres"]
    ]
    return pd.DataFrame(
        {
            "item_id": movies["item_id"].to_numpy(np.int64),
            "title": [str(t).strip() for t in movies["title"]],
            "genres": genres,
            "tags": [item_tags.get(int(i), "") for i in movies["item_id"]],
        }
    )


class MovieLensLatest(Source):
    """ml-latest-small and the other CSV releases. `tags`: None uses tags.csv when the folder has it."""

    item_fields: ClassVar[tuple[str, ...]] = ("title", "genres", "tags")
    default_template: ClassVar[tuple[str, ...]] = ("{title}", "Genres: {genres}", "Tags: {tags}")
    releases: ClassVar[dict[str, str]] = {
        "ml-latest-small": "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
    }

    def __init__(
        self,
        root: str | Path,
        max_tags: int = 5,
        tags: bool | None = None,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
    ) -> None:
        super().__init__(root, rating_min, rating_max)
        self.max_tags = int(max_tags)
        self.with_tags = (self.root / TAGS_FILE).is_file() if tags is None else bool(tags)

    def files(self) -> list[str]:
        names = [RATINGS_FILE, MOVIES_FILE] + ([TAGS_FILE] if self.with_tags else [])
        self.require(*names)
        return names

    def options(self) -> dict[str, Any]:
        return {**super().options(), "max_tags": self.max_tags, "tags": self.with_tags}

    def read(self, drop_invalid: bool = False) -> SourceTables:
        self.files()
        if not self.with_tags:
            log.info("%s has no %s: item texts carry no tags", self.root, TAGS_FILE)
        tables = read_movielens_csv(self.root, self.rating_scale, with_tags=self.with_tags, drop_invalid=drop_invalid)
        items = item_fields(tables.movies, tables.tags, self.max_tags)
        return SourceTables(interactions=tables.ratings, items=items, users=None, dropped=tables.dropped)
