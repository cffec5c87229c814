"""MovieLens in the CSV layout shared by ml-latest-small, ml-latest, 20M, 25M and 32M: ratings, movies, tags, genome.

Files: `ratings.csv` (userId,movieId,rating,timestamp), `movies.csv` (movieId,title,genres with `|` between
genres), optional `tags.csv` (userId,movieId,tag,timestamp), and in 20M/25M optionally the tag genome
(`genome-scores.csv`: movieId,tagId,relevance; `genome-tags.csv`: tagId,tag); UTF-8, one header row, titles may
hold quoted commas and even line breaks. `links.csv` (IMDb/TMDb ids) carries no text and is not read.

Item text fields: `title`, `genres` (", "-joined; empty for "(no genres listed)"), `tags` (the item's `max_tags`
most frequent tags, lower-cased) and, with `genome=N`, `genome` (the item's N most relevant genome tags). User
field with `max_user_tags=N`: `tags`, the N tags the user applied most often. The `.dat` releases (1M, 10M) reuse
`top_tags` and `item_table` from here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmrec.data.io.checks import RowChecks, take
from lmrec.data.io.readers import RawTable, TextFormat, read_text_table
from lmrec.data.sources.base import RatingScale, Source, SourceTables, TimeRange, interactions_from
from lmrec.data.sources.movielens_genome import GENOME_FILES, genome_tags
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

RATINGS_FILE, MOVIES_FILE, TAGS_FILE = "ratings.csv", "movies.csv", "tags.csv"
NO_GENRES = "(no genres listed)"
CSV = TextFormat()
BASE_URL = "https://files.grouplens.org/datasets/movielens/"
#: MovieLens numbers its users and movies from 1: a 0 or a negative id is a damaged field.
FIRST_ID = 1
#: MovieLens started collecting ratings in 1995, and its times are Unix seconds (10 digits until 2286): a time
#: before 1995-01-01 (e.g. a last line cut short, `14938`) or with 11+ digits (milliseconds) is a damaged value.
MOVIELENS_TIMES = TimeRange(788918400, 9_999_999_999)


@dataclass
class MovieLensTables:
    """The parsed files with the original ids and file row order: `ratings` (user_id, item_id, rating float32,
    timestamp), `movies` (item_id, title, genres as in the file), `tags` (user_id, item_id, tag, timestamp; empty
    without tags.csv)."""

    ratings: pd.DataFrame
    movies: pd.DataFrame
    tags: pd.DataFrame
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)


def movies_from(raw: RawTable, columns: tuple[str, str, str], drop_invalid: bool, dropped: dict) -> pd.DataFrame:
    """item_id, title, genres (as written) from a movies file's (id, title, genres) columns; ids unique, from 1."""
    id_col, title_col, genres_col = columns
    checks = RowChecks(raw)
    item_ids = checks.unique_ids(id_col, "an integer movie id", FIRST_ID)
    keep = checks.resolve(drop_invalid, dropped)
    return pd.DataFrame(
        {
            "item_id": take(item_ids, keep),
            "title": checks.strings(title_col, keep),
            "genres": checks.strings(genres_col, keep),
        }
    )


def tags_from(
    raw: RawTable,
    columns: tuple[str, str, str, str],
    known: np.ndarray,
    movies_file: str,
    drop_invalid: bool,
    dropped: dict,
    times: TimeRange = MOVIELENS_TIMES,
) -> pd.DataFrame:
    """user_id, item_id, tag, timestamp from a tags file's columns; every tag names a movie of `movies_file`."""
    user_col, item_col, tag_col, time_col = columns
    checks = RowChecks(raw)
    user_ids = checks.integers(user_col, "an integer user id", FIRST_ID)
    item_ids = checks.integers(item_col, "an integer movie id", FIRST_ID)
    timestamps = checks.integers(time_col, "an integer Unix timestamp")
    checks.known(
        item_col,
        item_ids,
        known,
        "unknown item",
        lambda i: f"unknown item: {item_col} {item_ids[i]} is not in {movies_file}",
    )
    times.check(checks, time_col, timestamps)
    keep = checks.resolve(drop_invalid, dropped)
    return pd.DataFrame(
        {
            "user_id": take(user_ids, keep),
            "item_id": take(item_ids, keep),
            "tag": checks.strings(tag_col, keep),
            "timestamp": take(timestamps, keep),
        }
    )


def read_movielens_csv(
    root: Path,
    scale: RatingScale,
    *,
    with_tags: bool = True,
    drop_invalid: bool = False,
    duplicates: str = "error",
    times: TimeRange = MOVIELENS_TIMES,
) -> MovieLensTables:
    """Parse and validate the files; movies first, since ratings and tags must name a known movie."""
    root = Path(root)
    dropped: dict[str, dict[str, int]] = {}
    raw = read_text_table(root / MOVIES_FILE, CSV, ("movieId", "title", "genres"), columnar=True)
    movies = movies_from(raw, ("movieId", "title", "genres"), drop_invalid, dropped)
    known = movies["item_id"].to_numpy()
    raw = read_text_table(root / RATINGS_FILE, CSV, ("userId", "movieId", "rating", "timestamp"), columnar=True)
    ratings = interactions_from(
        raw,
        ("userId", "movieId", "rating", "timestamp"),
        known,
        MOVIES_FILE,
        scale,
        drop_invalid,
        dropped,
        what=("an integer user id", "an integer movie id"),
        duplicates=duplicates,
        min_id=FIRST_ID,
        times=times,
    )
    tags = _empty_tags()
    if with_tags:
        raw = read_text_table(root / TAGS_FILE, CSV, ("userId", "movieId", "tag", "timestamp"), columnar=True)
        columns = ("userId", "movieId", "tag", "timestamp")
        tags = tags_from(raw, columns, known, MOVIES_FILE, drop_invalid, dropped, times)
    return MovieLensTables(ratings=ratings, movies=movies, tags=tags, dropped=dropped)


def _empty_tags() -> pd.DataFrame:
    empty = np.empty(0, dtype=np.int64)
    return pd.DataFrame({"user_id": empty, "item_id": empty, "tag": pd.Series([], dtype=str), "timestamp": empty})


def top_tags(tags: pd.DataFrame, max_tags: int, by: str = "item_id") -> dict[int, str]:
    """Each item's (or, with `by="user_id"`, each user's) most frequent tags, case-insensitive, ", "-joined; ties
    broken alphabetically so the text is reproducible."""
    if max_tags <= 0 or tags.empty:
        return {}
    frame = pd.DataFrame({by: tags[by], "tag": tags["tag"].str.strip().str.lower()})
    frame = frame[frame["tag"] != ""]
    counts = frame.groupby([by, "tag"]).size().reset_index(name="n")
    counts = counts.sort_values([by, "n", "tag"], ascending=[True, False, True])
    best = counts.groupby(by).head(max_tags)
    return best.groupby(by)["tag"].agg(", ".join).to_dict()


def item_table(movies: pd.DataFrame, tags: pd.DataFrame, max_tags: int) -> pd.DataFrame:
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


#: Kept under its former name for callers of the first version.
item_fields = item_table


def user_tag_table(ratings: pd.DataFrame, tags: pd.DataFrame, max_user_tags: int) -> pd.DataFrame:
    """user_id (every user who rated) and `tags`, the user's most frequent own tags ("" for a user with none)."""
    user_ids = np.unique(ratings["user_id"].to_numpy())
    best = top_tags(tags, max_user_tags, by="user_id")
    return pd.DataFrame({"user_id": user_ids, "tags": [best.get(int(u), "") for u in user_ids]})


class MovieLensCSV(Source):
    """The CSV releases (20M, 25M, 32M, ml-latest). `tags`: None uses tags.csv when the folder has it.

    `max_user_tags` > 0 adds the user field `tags`; `genome` > 0 adds the item field `genome` (20M and 25M ship the
    genome; 32M does not). Both are off by default, so the fields a template may use follow the options.
    `min_timestamp` / `max_timestamp`: the plausible rating and tag times (`MOVIELENS_TIMES`; null: no bound).
    """

    item_fields: ClassVar[tuple[str, ...]] = ("title", "genres", "tags")
    default_template: ClassVar[tuple[str, ...]] = ("{title}", "Genres: {genres}", "Tags: {tags}")
    releases: ClassVar[dict[str, str]] = {f"ml-{size}": f"{BASE_URL}ml-{size}.zip" for size in ("20m", "25m", "32m")}

    def __init__(
        self,
        root: str | Path,
        max_tags: int = 5,
        tags: bool | None = None,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
        max_user_tags: int = 0,
        genome: int = 0,
        min_timestamp: int | None = MOVIELENS_TIMES.low,
        max_timestamp: int | None = MOVIELENS_TIMES.high,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, rating_min, rating_max, **kwargs)
        self.times = TimeRange(min_timestamp, max_timestamp)
        self.max_tags, self.max_user_tags, self.genome = int(max_tags), int(max_user_tags), int(genome)
        if min(self.max_tags, self.max_user_tags, self.genome) < 0:
            raise ConfigError(
                f"data.source.max_tags={max_tags}, max_user_tags={max_user_tags}, genome={genome}: "
                "expected counts >= 0 (0 turns the field's content off)"
            )
        self.with_tags = (self.root / TAGS_FILE).is_file() if tags is None else bool(tags)
        if self.max_user_tags and not self.with_tags:
            raise ConfigError(
                f"data.source.max_user_tags={max_user_tags} needs tags.csv (data.source.tags is false "
                f"or {self.root / TAGS_FILE} is missing)"
            )
        # Instance attributes on purpose: the fields a template may name depend on the options.
        if self.genome:
            self.item_fields = (*type(self).item_fields, "genome")
        if self.max_user_tags:
            self.user_fields = ("tags",)

    def files(self) -> list[str]:
        names = [RATINGS_FILE, MOVIES_FILE] + ([TAGS_FILE] if self.with_tags else [])
        self.require(*names)
        if self.genome:
            self.require(*names, *GENOME_FILES)
            names += list(GENOME_FILES)
        return names

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "max_tags": self.max_tags,
            "tags": self.with_tags,
            "max_user_tags": self.max_user_tags,
            "genome": self.genome,
            "min_timestamp": self.times.low,
            "max_timestamp": self.times.high,
        }

    def read(self, drop_invalid: bool = False) -> SourceTables:
        self.files()
        if not self.with_tags:
            log.info("%s has no %s: item texts carry no tags", self.root, TAGS_FILE)
        tables = read_movielens_csv(
            self.root,
            self.rating_scale,
            with_tags=self.with_tags,
            drop_invalid=drop_invalid,
            duplicates=self.duplicates,
            times=self.times,
        )
        items = item_table(tables.movies, tables.tags, self.max_tags)
        if self.genome:
            best = genome_tags(self.root, items["item_id"].to_numpy(), self.genome, drop_invalid, tables.dropped)
            items["genome"] = [best.get(int(i), "") for i in items["item_id"]]
        users = user_tag_table(tables.ratings, tables.tags, self.max_user_tags) if self.max_user_tags else None
        return SourceTables(interactions=tables.ratings, items=items, users=users, dropped=tables.dropped)


class MovieLensLatest(MovieLensCSV):
    """ml-latest-small (bundled with lmrec), whose checksums ship with the package; same layout and options."""

    releases: ClassVar[dict[str, str]] = {"ml-latest-small": f"{BASE_URL}ml-latest-small.zip"}
