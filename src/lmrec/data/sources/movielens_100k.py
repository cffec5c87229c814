"""MovieLens 100K (`ml-100k`, GroupLens 1998): `u.data`, `u.item`, `u.user`, read byte for byte as distributed.

- `u.data`: tab-separated `user id, item id, rating (1-5), timestamp`, no header;
- `u.item`: latin-1, `|`-separated `movie id | movie title | release date | video release date | IMDb URL |` then
  19 genre flags (0/1) in the order of `u.genre`;
- `u.user`: `user id | age | gender | occupation | zip code`.

Item text fields: `title`, `genres` (the flagged genres, ", "-joined), `release_date`. User fields: `age` (in
years), `gender` ("M"/"F"), `occupation` (e.g. "technician") and `zip_code`, as written in the file; MovieLens 1M
(`movielens_dat.py`) gives the same four names (its age a bucket such as "25-34", its occupation decoded).
Timestamps must lie inside `min_timestamp` / `max_timestamp` (default `MOVIELENS_TIMES`, as for the CSV releases):
a last line cut short (`14938`) is a located error, not a rating from 1970.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmrec.data.io.checks import RowChecks, take
from lmrec.data.io.readers import TextFormat, read_text_table
from lmrec.data.sources.base import Source, SourceTables, TimeRange, interactions_from
from lmrec.data.sources.movielens import MOVIELENS_TIMES

#: The genre flags of u.item, in file order (u.genre lists the same names with their index).
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
DATA = ("user id", "item id", "rating", "timestamp")
ITEM = ("movie id", "movie title", "release date", "video release date", "IMDb URL", *GENRES)
USER = ("user id", "age", "gender", "occupation", "zip code")


class MovieLens100K(Source):
    """The 100,000 ratings of 943 users on 1,682 movies, with user demographics."""

    item_fields: ClassVar[tuple[str, ...]] = ("title", "genres", "release_date")
    user_fields: ClassVar[tuple[str, ...]] = ("age", "gender", "occupation", "zip_code")
    default_template: ClassVar[tuple[str, ...]] = ("{title}", "Genres: {genres}")

    releases: ClassVar[dict[str, str]] = {"ml-100k": "https://files.grouplens.org/datasets/movielens/ml-100k.zip"}

    def __init__(
        self,
        root: str | Path,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
        min_timestamp: int | None = MOVIELENS_TIMES.low,
        max_timestamp: int | None = MOVIELENS_TIMES.high,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, rating_min, rating_max, **kwargs)
        self.times = TimeRange(min_timestamp, max_timestamp)  # checked here: a bad bound fails before any read

    def files(self) -> list[str]:
        names = ["u.data", "u.item", "u.user"]
        self.require(*names)
        return names

    def options(self) -> dict[str, Any]:
        return {**super().options(), "min_timestamp": self.times.low, "max_timestamp": self.times.high}

    def read(self, drop_invalid: bool = False) -> SourceTables:
        self.files()
        dropped: dict[str, dict[str, int]] = {}
        items = self._items(drop_invalid, dropped)
        users = self._users(drop_invalid, dropped)
        raw = read_text_table(
            self.root / "u.data", TextFormat("\t", header=False, names=DATA, quoted=False), DATA, columnar=True
        )
        interactions = interactions_from(
            raw,
            DATA,
            items["item_id"].to_numpy(),
            "u.item",
            self.rating_scale,
            drop_invalid,
            dropped,
            what=("an integer user id", "an integer movie id"),
            known_users=(users["user_id"].to_numpy(), "u.user"),
            duplicates=self.duplicates,
            times=self.times,
        )
        return SourceTables(interactions=interactions, items=items, users=users, dropped=dropped)

    def _items(self, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> pd.DataFrame:
        fmt = TextFormat("|", encoding="latin-1", header=False, names=ITEM, quoted=False)
        checks = RowChecks(read_text_table(self.root / "u.item", fmt, ITEM))
        ids = checks.unique_ids("movie id", "an integer movie id")
        flags = [checks.choices(genre, ("0", "1"), "a genre flag 0 or 1") for genre in GENRES]
        keep = checks.resolve(drop_invalid, dropped)
        flagged = np.stack([take(f, keep) == "1" for f in flags], axis=1)
        genres = [", ".join(g for g, on in zip(GENRES, row, strict=True) if on) for row in flagged]
        return pd.DataFrame(
            {
                "item_id": take(ids, keep),
                "title": checks.strings("movie title", keep).str.strip(),
                "genres": genres,
                "release_date": checks.strings("release date", keep),
            }
        )

    def _users(self, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> pd.DataFrame:
        fmt = TextFormat("|", encoding="latin-1", header=False, names=USER, quoted=False)
        checks = RowChecks(read_text_table(self.root / "u.user", fmt, USER))
        ids = checks.unique_ids("user id", "an integer user id")
        checks.integers("age", "an age in years")
        checks.choices("gender", ("M", "F"), "a gender M or F")
        keep = checks.resolve(drop_invalid, dropped)
        fields = {"age": "age", "gender": "gender", "occupation": "occupation", "zip_code": "zip code"}
        return pd.DataFrame({"user_id": take(ids, keep), **{k: checks.strings(v, keep) for k, v in fields.items()}})
