"""MovieLens 1M and 10M in their `::`-separated `.dat` files, read byte for byte as distributed.

- 1M (`ml-1m`, 2003): `ratings.dat` (UserID::MovieID::Rating::Timestamp, whole stars 1-5), `movies.dat`
  (MovieID::Title::Genres, genres `|`-separated) and `users.dat` (UserID::Gender::Age::Occupation::Zip-code);
  latin-1 (titles such as "Misérables, Les (1995)").
- 10M (`ml-10M100K`, 2009): `ratings.dat` (half stars 0.5-5), `movies.dat`, `tags.dat`
  (UserID::MovieID::Tag::Timestamp); no users file. The README is UTF-8 and the files read as UTF-8 (`encoding`
  overrides it; an undecodable byte is an error naming its line).

No header lines. A title (or tag) that itself holds `::` is read whole: the fields before it are taken from the
left, those after it from the right (`TextFormat.free_column`). Item fields: `title`, `genres` (", "-joined),
and in 10M `tags`. User fields: 1M `age` (the README's bucket, e.g. "25-34"), `gender` ("M"/"F"), `occupation`
(the README's name, e.g. "college/grad student") and `zip_code` (as written), the same names MovieLens 100K uses;
10M `tags` (a user's own most frequent tags) with `max_user_tags` > 0. Rating and tag times must lie inside
`min_timestamp` / `max_timestamp` (default `MOVIELENS_TIMES`, as for the CSV releases; null: no bound).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from lmrec.data.io.checks import RowChecks, take
from lmrec.data.io.readers import TextFormat, read_text_table
from lmrec.data.sources.base import Source, SourceTables, TimeRange, interactions_from
from lmrec.data.sources.movielens import (
    BASE_URL,
    MOVIELENS_TIMES,
    item_table,
    movies_from,
    tags_from,
    user_tag_table,
)
from lmrec.errors import ConfigError

RATINGS = ("UserID", "MovieID", "Rating", "Timestamp")
MOVIES = ("MovieID", "Title", "Genres")
USERS = ("UserID", "Gender", "Age", "Occupation", "Zip-code")
TAGS = ("UserID", "MovieID", "Tag", "Timestamp")

#: users.dat's age codes and occupation codes, decoded to the names the 1M README gives them.
AGES = {"1": "Under 18", "18": "18-24", "25": "25-34", "35": "35-44", "45": "45-49", "50": "50-55", "56": "56+"}
OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip


def dat_format(names: tuple[str, ...], encoding: str, free: str | None = None) -> TextFormat:
    """The `.dat` layout: `::` between fields, no header, no quoting."""
    return TextFormat("::", encoding=encoding, header=False, names=names, quoted=False, free_column=free)


class _MovieLensDat(Source):
    """What 1M and 10M share: movies.dat and ratings.dat in `::` format, and the plausible times of their rows."""

    encoding: ClassVar[str] = "utf-8"

    def __init__(
        self,
        root: str | Path,
        encoding: str | None = None,
        min_timestamp: int | None = MOVIELENS_TIMES.low,
        max_timestamp: int | None = MOVIELENS_TIMES.high,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.encoding = encoding or type(self).encoding
        self.times = TimeRange(min_timestamp, max_timestamp)  # checked here: a bad bound fails before any read

    def options(self) -> dict[str, Any]:
        return {
            **super().options(),
            "encoding": self.encoding,
            "min_timestamp": self.times.low,
            "max_timestamp": self.times.high,
        }

    def _movies(self, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> pd.DataFrame:
        raw = read_text_table(
            self.root / "movies.dat", dat_format(MOVIES, self.encoding, "Title"), MOVIES, columnar=True
        )
        return movies_from(raw, MOVIES, drop_invalid, dropped)

    def _ratings(self, movies: pd.DataFrame, drop_invalid: bool, dropped: dict, **known: Any) -> pd.DataFrame:
        raw = read_text_table(self.root / "ratings.dat", dat_format(RATINGS, self.encoding), RATINGS, columnar=True)
        return interactions_from(
            raw,
            RATINGS,
            movies["item_id"].to_numpy(),
            "movies.dat",
            self.rating_scale,
            drop_invalid,
            dropped,
            what=("an integer user id", "an integer movie id"),
            duplicates=self.duplicates,
            times=self.times,
            **known,
        )


class MovieLens1M(_MovieLensDat):
    """1,000,209 ratings of 6,040 users on 3,706 rated movies (3,883 listed), with user demographics."""

    item_fields: ClassVar[tuple[str, ...]] = ("title", "genres")
    user_fields: ClassVar[tuple[str, ...]] = ("age", "gender", "occupation", "zip_code")
    default_template: ClassVar[tuple[str, ...]] = ("{title}", "Genres: {genres}")
    releases: ClassVar[dict[str, str]] = {"ml-1m": f"{BASE_URL}ml-1m.zip"}
    encoding: ClassVar[str] = "latin-1"

    def __init__(self, root: str | Path, rating_min: float = 1.0, rating_max: float = 5.0, **kwargs: Any) -> None:
        super().__init__(root, rating_min=rating_min, rating_max=rating_max, **kwargs)

    def files(self) -> list[str]:
        names = ["ratings.dat", "movies.dat", "users.dat"]
        self.require(*names)
        return names

    def read(self, drop_invalid: bool = False) -> SourceTables:
        self.files()
        dropped: dict[str, dict[str, int]] = {}
        movies = self._movies(drop_invalid, dropped)
        users = self._users(drop_invalid, dropped)
        ratings = self._ratings(movies, drop_invalid, dropped, known_users=(users["user_id"].to_numpy(), "users.dat"))
        items = item_table(movies, movies.iloc[:0], 0).drop(columns="tags")  # 1M has no tags file
        return SourceTables(interactions=ratings, items=items, users=users, dropped=dropped)

    def _users(self, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> pd.DataFrame:
        checks = RowChecks(read_text_table(self.root / "users.dat", dat_format(USERS, self.encoding), USERS))
        ids = checks.unique_ids("UserID", "an integer user id")
        gender = checks.choices("Gender", ("M", "F"), "a gender M or F")
        age = checks.choices("Age", tuple(AGES), f"an age code ({', '.join(AGES)})")
        codes = tuple(str(i) for i in range(len(OCCUPATIONS)))
        occupation = checks.choices("Occupation", codes, f"an occupation code 0-{len(OCCUPATIONS) - 1}")
        keep = checks.resolve(drop_invalid, dropped)
        return pd.DataFrame(
            {
                "user_id": take(ids, keep),
                "age": [AGES[a] for a in take(age, keep)],
                "gender": take(gender, keep).astype(str),
                "occupation": [OCCUPATIONS[int(o)] for o in take(occupation, keep)],
                "zip_code": checks.strings("Zip-code", keep),
            }
        )


class MovieLens10M(_MovieLensDat):
    """10,000,054 ratings and 95,580 tags of 69,878 users on 10,677 rated movies; no demographics."""

    item_fields: ClassVar[tuple[str, ...]] = ("title", "genres", "tags")
    default_template: ClassVar[tuple[str, ...]] = ("{title}", "Genres: {genres}", "Tags: {tags}")
    releases: ClassVar[dict[str, str]] = {"ml-10m": f"{BASE_URL}ml-10m.zip"}

    def __init__(
        self,
        root: str | Path,
        max_tags: int = 5,
        max_user_tags: int = 0,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, rating_min=rating_min, rating_max=rating_max, **kwargs)
        self.max_tags, self.max_user_tags = int(max_tags), int(max_user_tags)
        if min(self.max_tags, self.max_user_tags) < 0:
            raise ConfigError(f"data.source.max_tags={max_tags}, max_user_tags={max_user_tags}: expected counts >= 0")
        if self.max_user_tags:  # instance attribute: the user fields follow the option
            self.user_fields = ("tags",)

    def files(self) -> list[str]:
        names = ["ratings.dat", "movies.dat", "tags.dat"]
        self.require(*names)
        return names

    def options(self) -> dict[str, Any]:
        return {**super().options(), "max_tags": self.max_tags, "max_user_tags": self.max_user_tags}

    def read(self, drop_invalid: bool = False) -> SourceTables:
        self.files()
        dropped: dict[str, dict[str, int]] = {}
        movies = self._movies(drop_invalid, dropped)
        ratings = self._ratings(movies, drop_invalid, dropped)
        raw = read_text_table(self.root / "tags.dat", dat_format(TAGS, self.encoding, "Tag"), TAGS, columnar=True)
        tags = tags_from(raw, TAGS, movies["item_id"].to_numpy(), "movies.dat", drop_invalid, dropped, self.times)
        users = user_tag_table(ratings, tags, self.max_user_tags) if self.max_user_tags else None
        return SourceTables(
            interactions=ratings, items=item_table(movies, tags, self.max_tags), users=users, dropped=dropped
        )
