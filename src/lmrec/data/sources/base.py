"""The data-source contract: a dataset's files in, validated tables out.

A `Source` knows one dataset family's file layout and nothing else. It says which files it reads (their digests
key the processed cache and are verified against the folder's checksum manifest), which item and user text fields
it provides (templates are checked against them before anything is read), the rating scale, and how to turn its
files into three tables:

- interactions: `user_id`, `item_id` (the dataset's own ids, int or str), `rating` float32, `timestamp` int64;
- items: `item_id` plus one str column per item field (what text templates may use), in file order;
- users (optional): `user_id` plus one str column per user field.

Everything after that (indexing, texts, splits, caching, batches) is generic and lives outside the sources.
A new dataset family is one module here plus one `conf/data/<name>.yaml` whose `source._target_` names it.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lmrec.config.arguments import BuildFacts, provides
from lmrec.data.io.checks import RowChecks, take
from lmrec.data.io.checksums import file_digests
from lmrec.data.io.errors import check_readable
from lmrec.data.io.readers import RawTable
from lmrec.errors import ConfigError

__all__ = [
    "DUPLICATE_POLICIES",
    "RatingScale",
    "Source",
    "SourceTables",
    "TimeRange",
    "apply_duplicate_policy",
    "interactions_from",
]

log = logging.getLogger(__name__)

#: What to do with a (user, item) pair that occurs more than once. `error` (the default) stops at the repeat,
#: naming both lines: a repeated rating in MovieLens is a corrupt file, and guessing would change the data.
#: `first` / `last` keep the earliest / latest row by timestamp (ties: file order); `sum` keeps one row per pair
#: whose `weight` column counts the pair's rows (implicit data: plays, clicks), with the latest rating and time.
DUPLICATE_POLICIES = ("error", "first", "last", "sum")


@dataclass(frozen=True)
class RatingScale:
    """The valid rating range of a dataset (inclusive). The one place the range is checked."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not float(self.low) < float(self.high):
            raise ConfigError(f"data.source.rating_min={self.low} must be below data.source.rating_max={self.high}")


@dataclass(frozen=True)
class TimeRange:
    """The plausible interaction times of a dataset, in Unix seconds (inclusive; None: no bound).

    A timestamp outside it is a damaged value, not an early or late interaction: a line cut short (`14938` among
    10-digit times reads as 1970) or milliseconds where seconds belong (13 digits). Without the check, such a row
    silently becomes the oldest or newest interaction, which a temporal split or leave-one-out then puts first or
    last. Sources whose dates are known (MovieLens began in 1995) set one; `data.source.min_timestamp` /
    `max_timestamp` override it, and null turns a bound off.
    """

    low: int | None = None
    high: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("min_timestamp", self.low), ("max_timestamp", self.high)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"data.source.{name}={value!r}; expected Unix seconds (a whole number) or null")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ConfigError(
                f"data.source.min_timestamp={self.low} must not be after data.source.max_timestamp={self.high}"
            )

    def describe(self) -> str:
        """The range in words and dates, for error messages."""

        def date(value: int) -> str:
            return f"{value} ({pd.Timestamp(value, unit='s'):%Y-%m-%d})"

        if self.low is not None and self.high is not None:
            return f"between {date(self.low)} and {date(self.high)}"
        return f"from {date(self.low)} on" if self.low is not None else f"up to {date(self.high)}"  # type: ignore[arg-type]

    def check(self, checks: RowChecks, column: str, timestamps: np.ndarray) -> None:
        """Flag the rows outside the range (after the reference checks: an unknown item is reported as that)."""
        if self.low is not None or self.high is not None:
            checks.within(column, timestamps, self.low, self.high, f"a Unix time in seconds {self.describe()}")


@dataclass
class SourceTables:
    """What a source read: the three contract tables and the rows `drop_invalid` removed, per file and reason."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)


class Source(ABC):
    """One dataset family's files -> `SourceTables`. Subclasses set the class attributes and implement two methods.

    Attributes:
        item_fields: the item text fields the items table holds (template fields must be among them).
        user_fields: the user text fields the users table holds (empty: the dataset has no users table).
        manifest: the checksum manifest inside `root` that `verify_checksums` checks the inputs against.
        releases: official release name -> download URL, for `lmrec-download` (checksums ship in
            `lmrec/data/known_checksums/<name>.sha256`; a release is only listed once they do).
        default_template: the item-text template when `data.text.template` is not set (default: every item
            field, as "{field}").
    """

    item_fields: ClassVar[tuple[str, ...]] = ()
    default_template: ClassVar[tuple[str, ...] | None] = None
    user_fields: ClassVar[tuple[str, ...]] = ()
    manifest: ClassVar[str] = "SHA256SUMS"
    releases: ClassVar[dict[str, str]] = {}

    def __init__(
        self, root: str | Path, rating_min: float = 1.0, rating_max: float = 5.0, duplicates: str = "error"
    ) -> None:
        self.root = Path(root)
        self.rating_scale = RatingScale(float(rating_min), float(rating_max))
        if duplicates not in DUPLICATE_POLICIES:
            raise ConfigError(f"data.source.duplicates={duplicates!r}; expected one of {', '.join(DUPLICATE_POLICIES)}")
        self.duplicates = duplicates

    def template(self) -> tuple[str, ...]:
        """The default item-text template of this source."""
        return self.default_template or tuple(f"{{{field}}}" for field in self.item_fields)

    @property
    def name(self) -> str:
        """The class path: how run records and error messages name the source."""
        return f"{type(self).__module__}.{type(self).__qualname__}"

    @abstractmethod
    def files(self) -> list[str]:
        """Names (relative to `root`) of the files `read` parses; a missing required file raises here."""

    @abstractmethod
    def read(self, drop_invalid: bool = False) -> SourceTables:
        """Parse and validate the files. Raises DataValidationError naming file, line and column."""

    def options(self) -> dict[str, Any]:
        """Source options that change the tables (beyond the files' bytes); part of the processed-cache key."""
        return {
            "rating_min": self.rating_scale.low,
            "rating_max": self.rating_scale.high,
            "duplicates": self.duplicates,
        }

    def identity(self) -> dict[str, Any]:
        """What, besides the input bytes, determines this source's tables."""
        return {"source": self.name, "options": self.options()}

    def digests(self, verify: bool = True) -> dict[str, str]:
        """SHA-256 of every input file, verified against `root/<manifest>` when `verify` and the folder has one."""
        return file_digests(self.root, self.files(), verify=verify, manifest=self.manifest)

    def require(self, *names: str) -> None:
        """Raise the contract's error for input files that are not there."""
        needed = ", ".join(names[:-1]) + (f" and {names[-1]}" if len(names) > 1 else names[-1])
        for name in names:
            check_readable(self.root / name, f"a {type(self).__name__} folder must contain {needed}")


def interactions_from(
    raw: RawTable,
    columns: tuple[str, str, str, str],
    known_items: np.ndarray,
    items_file: str,
    scale: RatingScale,
    drop_invalid: bool,
    dropped: dict[str, dict[str, int]],
    what: tuple[str, str] = ("an integer user id", "an integer item id"),
    known_users: tuple[np.ndarray, str] | None = None,
    duplicates: str = "error",
    min_id: int | None = 0,
    times: TimeRange | None = None,
) -> pd.DataFrame:
    """The interactions table from a file's (user, item, rating, timestamp) columns, named as in the file.

    Checks in this order (the first a row fails is the one reported): integer ids of at least `min_id`, a rating
    on the scale, an integer Unix timestamp, an item the items file defines (and a user the users file defines,
    when the source has one: `known_users` = (ids, file name)), a timestamp inside `times` (when given), and no
    (user, item) pair twice (the first is kept). With another `duplicates` policy than "error", repeated pairs
    pass the checks and are merged by `apply_duplicate_policy`.

    Ids are non-negative by default: integer ids are serial numbers, and a minus sign in front of one is a damaged
    field that would otherwise become a new user or item. A source whose ids start at 1 (MovieLens) passes 1;
    None accepts any integer (e.g. hashed ids).
    """
    user_col, item_col, rating_col, time_col = columns
    checks = RowChecks(raw)
    users = checks.integers(user_col, what[0], min_id)
    items = checks.integers(item_col, what[1], min_id)
    ratings = checks.numbers(rating_col, scale.low, scale.high)
    timestamps = checks.integers(time_col, "an integer Unix timestamp")
    checks.known(
        item_col,
        items,
        known_items,
        "unknown item",
        lambda i: f"unknown item: {item_col} {items[i]} is not in {items_file}",
    )
    if known_users is not None:
        user_ids, users_file = known_users
        checks.known(
            user_col,
            users,
            user_ids,
            "unknown user",
            lambda i: f"unknown user: {user_col} {users[i]} is not in {users_file}",
        )
    if times is not None:
        times.check(checks, time_col, timestamps)
    if duplicates == "error":
        checks.unique(
            {"user": users, "item": items},
            "duplicate rating",
            item_col,
            lambda i, first: (
                f"duplicate rating: {user_col} {users[i]} already rated {item_col} {items[i]} on line {first}"
            ),
        )
    keep = checks.resolve(drop_invalid, dropped)
    frame = pd.DataFrame(
        {
            "user_id": take(users, keep),
            "item_id": take(items, keep),
            "rating": take(ratings, keep).astype(np.float32),
            "timestamp": take(timestamps, keep),
        }
    )
    return apply_duplicate_policy(frame, duplicates, raw.path, dropped)


def apply_duplicate_policy(
    frame: pd.DataFrame, policy: str, path: Path, dropped: dict[str, dict[str, int]]
) -> pd.DataFrame:
    """One row per (user_id, item_id) under `policy` (see DUPLICATE_POLICIES); rows in file order.

    The merged rows are counted in `dropped` under the file's name, so the processed cache reports them on every
    run, like any other removed row. "error" returns the frame unchanged: the row checks already refused repeats.
    """
    if policy == "error":
        return frame
    if policy not in DUPLICATE_POLICIES:
        raise ConfigError(f"data.source.duplicates={policy!r}; expected one of {', '.join(DUPLICATE_POLICIES)}")
    keys = ["user_id", "item_id"]
    repeated = frame.duplicated(keys, keep=False)
    if not repeated.any():
        return frame.assign(weight=np.float32(1.0)) if policy == "sum" else frame
    # A stable sort by time (file order breaks ties), so "first"/"last" mean earliest/latest interaction.
    ordered = frame.sort_values("timestamp", kind="stable")
    if policy == "sum":
        counts = ordered.groupby(keys, sort=False).size()
        kept = ordered.drop_duplicates(keys, keep="last")
        weight = counts.reindex(pd.MultiIndex.from_frame(kept[keys])).to_numpy(np.float32)
        kept = kept.assign(weight=weight)
    else:
        kept = ordered.drop_duplicates(keys, keep=policy)
    kept = kept.sort_index()
    merged = len(frame) - len(kept)
    reason = f"repeated (user, item) pair merged (duplicates={policy})"
    dropped.setdefault(Path(path).name, {})[reason] = merged
    log.info("%s: %d repeated (user, item) rows merged (duplicates=%s)", path, merged, policy)
    return kept.reset_index(drop=True)


@provides("rating_scale")
def _rating_scale(facts: BuildFacts) -> RatingScale:
    """The source's rating range, for a task that maps predictions onto it (`RatingTask`)."""
    return facts.source.rating_scale
