"""Load the raw MovieLens CSV files (ml-latest-small layout) into typed DataFrames.

This is the only place that reads MovieLens bytes, so it is where bad data must be caught:
everything downstream (splits, encoders, metrics) assumes ids are integers, ratings are in
range, every rated item exists and no (user, item) pair is rated twice. A violation raises
:class:`~lmrec.data.errors.DataValidationError` naming the file, the physical line and the
column, so the offending row can be found and fixed. Cleaning is opt-in
(``drop_invalid=True``) and always logged, so no result is ever computed on silently
altered data.

Parsing uses the :mod:`csv` module (titles contain quoted commas, and a quoted field may
span physical lines, which pandas' fast parsers cannot map back to line numbers);
validation is vectorised with numpy/pyarrow so the 100k-rating file loads in a fraction
of a second.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lmrec.data.checksums import read_sha256sums, sha256_file, verify_checksums
from lmrec.data.errors import DataValidationError

__all__ = [
    "MOVIES_FILE",
    "RATINGS_FILE",
    "SUMS_FILE",
    "TAGS_FILE",
    "MovieLensTables",
    "input_fingerprint",
    "load_movielens",
]

logger = logging.getLogger(__name__)

RATINGS_FILE = "ratings.csv"
MOVIES_FILE = "movies.csv"
TAGS_FILE = "tags.csv"
SUMS_FILE = "SHA256SUMS"

_RATINGS_COLUMNS = ("userId", "movieId", "rating", "timestamp")
_MOVIES_COLUMNS = ("movieId", "title", "genres")
_TAGS_COLUMNS = ("userId", "movieId", "tag", "timestamp")

# At most 18 digits so every accepted value fits in int64 without an overflow check.
_INT_PATTERN = r"^-?[0-9]{1,18}$"


@dataclass
class MovieLensTables:
    """The parsed MovieLens tables, with the original ids and file row order.

    Attributes:
        ratings: ``user_id`` int64, ``item_id`` int64, ``rating`` float32, ``timestamp`` int64.
        movies: ``item_id`` int64, ``title`` str, ``genres`` str (raw ``|``-joined).
        tags: ``user_id`` int64, ``item_id`` int64, ``tag`` str, ``timestamp`` int64
            (empty, same columns, when loaded with ``with_tags=False``).
        digests: ``{filename: sha256}`` of exactly the files that were parsed; record it as
            the input fingerprint of an experiment (it equals :func:`input_fingerprint`).
        dropped: with ``drop_invalid``, ``{filename: {reason: rows dropped}}`` for every file that lost rows.
    """

    ratings: pd.DataFrame
    movies: pd.DataFrame
    tags: pd.DataFrame
    digests: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)


def load_movielens(
    root: Path,
    *,
    verify: bool = True,
    drop_invalid: bool = False,
    rating_min: float = 0.5,
    rating_max: float = 5.0,
    with_tags: bool = True,
) -> MovieLensTables:
    """Read and validate ``ratings.csv``, ``movies.csv`` and (optionally) ``tags.csv``.

    Args:
        root: the dataset directory.
        verify: check the files against ``root/SHA256SUMS`` before parsing. Only the files
            this call reads are checked (a damaged ``links.csv`` does not block loading
            ratings). Without a manifest (user-supplied data) verification is skipped and
            an info line is logged.
        drop_invalid: drop rows that fail row-level checks (malformed row, bad value,
            unknown item, duplicate - first occurrence kept) and log one warning per file
            with the count per reason, instead of raising. Missing files or columns and
            checksum mismatches always raise.
        rating_min: smallest valid rating (inclusive).
        rating_max: largest valid rating (inclusive).
        with_tags: also load ``tags.csv``; when False the file need not exist.

    Raises:
        DataValidationError: a file is missing, undecodable, lacks a header column, or (when
            ``drop_invalid`` is False) a row is invalid; the first offending line in file
            order is reported.
        ChecksumError: a file does not match ``SHA256SUMS``.
    """
    root = Path(root)
    if not rating_min <= rating_max:
        raise ValueError(f"rating_min ({rating_min}) must not exceed rating_max ({rating_max})")
    names = _input_files(with_tags)
    for name in names:
        if not (root / name).is_file():
            raise DataValidationError(root / name, None, None, _missing_file_message(with_tags))

    digests: dict[str, str] = {}
    if verify:
        digests = _verify(root, names)

    movies_raw = _read_csv(root / MOVIES_FILE, _MOVIES_COLUMNS, digests)
    dropped: dict[str, dict[str, int]] = {}
    movies = _build_movies(movies_raw, drop_invalid, dropped)
    known_items = movies["item_id"].to_numpy()

    ratings_raw = _read_csv(root / RATINGS_FILE, _RATINGS_COLUMNS, digests)
    ratings = _build_ratings(ratings_raw, known_items, drop_invalid, rating_min, rating_max, dropped)

    if with_tags:
        tags_raw = _read_csv(root / TAGS_FILE, _TAGS_COLUMNS, digests)
        tags = _build_tags(tags_raw, known_items, drop_invalid, dropped)
    else:
        tags = _empty_tags()

    return MovieLensTables(
        ratings=ratings, movies=movies, tags=tags, digests={name: digests[name] for name in names}, dropped=dropped
    )


def input_fingerprint(root: Path, *, with_tags: bool = True, verify: bool = False) -> dict[str, str]:
    """Return ``{filename: sha256}`` of the files :func:`load_movielens` would parse.

    Use it to fingerprint inputs without loading them; with ``verify`` the files listed in
    ``SHA256SUMS`` are checked against it on the way (each file is hashed once). After a load,
    prefer ``MovieLensTables.digests``, which holds the same mapping without hashing again.
    """
    root = Path(root)
    names = _input_files(with_tags)
    for name in names:
        if not (root / name).is_file():
            raise DataValidationError(root / name, None, None, _missing_file_message(with_tags))
    digests = _verify(root, names) if verify else {}
    return {name: digests[name] if name in digests else sha256_file(root / name) for name in names}


# --------------------------------------------------------------------------- reading


def _input_files(with_tags: bool) -> list[str]:
    return [RATINGS_FILE, MOVIES_FILE] + ([TAGS_FILE] if with_tags else [])


def _missing_file_message(with_tags: bool) -> str:
    needed = f"{MOVIES_FILE}, {RATINGS_FILE}" + (f" and {TAGS_FILE}" if with_tags else "")
    return f"file not found (a MovieLens directory must contain {needed})"


def _verify(root: Path, names: Sequence[str]) -> dict[str, str]:
    """Verify the files to be parsed against ``root/SHA256SUMS``; return their digests."""
    sums_path = root / SUMS_FILE
    if not sums_path.is_file():
        logger.info("%s not found; skipping checksum verification (user-supplied data)", sums_path)
        return {}
    listed = read_sha256sums(sums_path)
    unlisted = [name for name in names if name not in listed]
    if unlisted:
        logger.warning("%s has no entry for %s; not verified", sums_path, ", ".join(unlisted))
    return verify_checksums(root, SUMS_FILE, files=[name for name in names if name in listed])


@dataclass
class _RawCsv:
    """One CSV file split into string columns, aligned with the records of the file.

    Malformed records keep their slot (with empty strings in every column) so that row
    indices, line numbers and validation masks all share a single index space.
    """

    path: Path
    header: list[str]
    lines: np.ndarray  # int64, physical line on which each record starts
    n_fields: np.ndarray  # int64, number of fields the record had
    csv_errors: dict[int, str]  # record index -> csv module error for unparsable records
    columns: dict[str, list[str]]  # required column name -> one value per record

    def __len__(self) -> int:
        return len(self.lines)


def _read_csv(path: Path, required: Sequence[str], digests: dict[str, str]) -> _RawCsv:
    """Parse ``path`` into string columns; records the file's digest if not yet known."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataValidationError(path, None, None, "file not found") from None
    if path.name not in digests:  # hash the bytes already in memory rather than re-reading
        digests[path.name] = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataValidationError(
            path, line, None, f"expected UTF-8 text, got undecodable byte(s) ({exc.reason})"
        ) from None
    text = text.removeprefix("\ufeff")  # tolerate a byte-order mark from spreadsheet exports

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DataValidationError(path, 1, None, f"empty file: expected a header row {','.join(required)}") from None
    except csv.Error as exc:
        raise DataValidationError(path, 1, None, f"unreadable header row: {exc}") from None
    for column in required:
        if column not in header:
            raise DataValidationError(
                path,
                1,
                column,
                f"missing column {column!r}: expected columns {', '.join(required)}; "
                f"found {', '.join(map(repr, header)) or 'none'}",
            )

    # reader.line_num counts physical lines consumed so far; a record starts on the line
    # after the previous record ended (a quoted field may span several lines).
    rows: list[list[str]] = []
    starts: list[int] = []
    csv_errors: dict[int, str] = {}
    prev_end = reader.line_num
    while True:
        try:
            for row in reader:
                if not row:  # a blank line holds no record (editors often leave one at the end)
                    prev_end = reader.line_num
                    continue
                starts.append(prev_end + 1)
                prev_end = reader.line_num
                rows.append(row)
            break
        except csv.Error as exc:  # bad quoting, NUL byte, oversized field: resume after it
            csv_errors[len(rows)] = str(exc)
            starts.append(prev_end + 1)
            prev_end = reader.line_num
            rows.append([])

    width = len(header)
    n_fields = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    blank = [""] * width
    for i in np.flatnonzero(n_fields != width):
        rows[i] = blank
    columns = {name: list(map(operator.itemgetter(header.index(name)), rows)) for name in required}
    return _RawCsv(
        path=path,
        header=header,
        lines=np.asarray(starts, dtype=np.int64),
        n_fields=n_fields,
        csv_errors=csv_errors,
        columns=columns,
    )


# --------------------------------------------------------------------------- validation


class _Checks:
    """Row-level problems of one file, collected in check order.

    Each row is attributed to the first check it fails, so per-reason counts add up to
    the number of dropped rows, and the row reported on error is the first bad line of the
    file regardless of which check caught it.
    """

    def __init__(self, raw: _RawCsv) -> None:
        self.raw = raw
        self.bad = np.zeros(len(raw), dtype=bool)
        self._found: list[tuple[str, str | None, np.ndarray, Callable[[int], str]]] = []
        width = len(raw.header)
        self.add(
            "malformed",
            None,
            raw.n_fields != width,
            lambda i: (
                f"malformed row: {raw.csv_errors[i]} (check the quoting on this row)"
                if i in raw.csv_errors
                else f"malformed row: expected {width} fields ({','.join(raw.header)}), got {raw.n_fields[i]}"
            ),
        )

    def add(self, reason: str, column: str | None, mask: np.ndarray, message: Callable[[int], str]) -> None:
        new = mask & ~self.bad
        if new.any():
            self._found.append((reason, column, new, message))
            self.bad |= new

    def resolve(self, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> np.ndarray | None:
        """Raise for the first bad row, or return the keep-mask (None: keep all) and log."""
        if not self._found:
            return None
        if not drop_invalid:
            # Each row belongs to at most one mask, so the earliest row is unambiguous.
            _, column, mask, message = min(self._found, key=lambda found: int(np.argmax(found[2])))
            index = int(np.argmax(mask))
            raise DataValidationError(self.raw.path, int(self.raw.lines[index]), column, message(index))
        counts: dict[str, int] = {}
        for reason, _, mask, _ in self._found:
            counts[reason] = counts.get(reason, 0) + int(mask.sum())
        total = int(self.bad.sum())
        dropped[self.raw.path.name] = counts
        logger.warning(
            "%s: dropped %d %s (%s)",
            self.raw.path,
            total,
            "row" if total == 1 else "rows",
            ", ".join(f"{count} {reason}" for reason, count in counts.items()),
        )
        return ~self.bad

    def int_column(self, name: str, what: str) -> np.ndarray:
        """Parse an integer column, flagging empty and non-integer values."""
        values = self.raw.columns[name]
        arr = pa.array(values, type=pa.string())
        ok = pc.match_substring_regex(arr, _INT_PATTERN).to_numpy(zero_copy_only=False)
        parsed = pc.cast(pc.if_else(ok, arr, "0"), pa.int64()).to_numpy()
        self.add(f"invalid {name}", name, ~ok, lambda i: f"expected {what}, got {_describe(values[i])}")
        return parsed


def _describe(value: str) -> str:
    return "an empty field" if value == "" else repr(value)


def _first_with_key(candidates: np.ndarray, keys: Sequence[np.ndarray], index: int) -> int:
    """Index of the first candidate row whose key columns equal those of row ``index``."""
    same = candidates.copy()
    for key in keys:
        same &= key == key[index]
    return int(np.argmax(same))


def _duplicated(candidates: np.ndarray, keys: dict[str, np.ndarray]) -> np.ndarray:
    """Mask of candidate rows whose key repeats an earlier candidate row (first kept)."""
    frame = pd.DataFrame({name: key[candidates] for name, key in keys.items()})
    mask = np.zeros(len(candidates), dtype=bool)
    mask[np.flatnonzero(candidates)[frame.duplicated(keep="first").to_numpy()]] = True
    return mask


def _unknown_items(checks: _Checks, item_ids: np.ndarray, known_items: np.ndarray) -> None:
    checks.add(
        "unknown item",
        "movieId",
        ~np.isin(item_ids, known_items),
        lambda i: f"unknown item: movieId {item_ids[i]} is not in {MOVIES_FILE}",
    )


def _strings(values: list[str], keep: np.ndarray | None) -> pd.Series:
    array = np.asarray(values, dtype=object)
    return pd.Series(array if keep is None else array[keep], dtype=str)


def _take(values: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    return values if keep is None else values[keep]


# --------------------------------------------------------------------------- tables


def _build_movies(raw: _RawCsv, drop_invalid: bool, dropped: dict[str, dict[str, int]]) -> pd.DataFrame:
    checks = _Checks(raw)
    item_ids = checks.int_column("movieId", "an integer movie id")
    candidates = ~checks.bad
    checks.add(
        "duplicate movieId",
        "movieId",
        _duplicated(candidates, {"item": item_ids}),
        lambda i: (
            f"duplicate movieId {item_ids[i]} "
            f"(first defined on line {raw.lines[_first_with_key(candidates, [item_ids], i)]})"
        ),
    )
    keep = checks.resolve(drop_invalid, dropped)
    return pd.DataFrame(
        {
            "item_id": _take(item_ids, keep),
            "title": _strings(raw.columns["title"], keep),
            "genres": _strings(raw.columns["genres"], keep),
        }
    )


def _build_ratings(
    raw: _RawCsv,
    known_items: np.ndarray,
    drop_invalid: bool,
    rating_min: float,
    rating_max: float,
    dropped: dict[str, dict[str, int]],
) -> pd.DataFrame:
    checks = _Checks(raw)
    user_ids = checks.int_column("userId", "an integer user id")
    item_ids = checks.int_column("movieId", "an integer movie id")

    text = raw.columns["rating"]
    ratings = np.asarray(pd.to_numeric(np.asarray(text, dtype=object), errors="coerce"), dtype=np.float64)
    expected = f"expected a number between {rating_min} and {rating_max}"
    checks.add("invalid rating", "rating", np.isnan(ratings), lambda i: f"{expected}, got {_describe(text[i])}")
    with np.errstate(invalid="ignore"):
        in_range = (ratings >= rating_min) & (ratings <= rating_max)
    checks.add("rating out of range", "rating", ~in_range, lambda i: f"{expected}, got {text[i]!r}")

    timestamps = checks.int_column("timestamp", "an integer Unix timestamp")
    _unknown_items(checks, item_ids, known_items)

    candidates = ~checks.bad
    checks.add(
        "duplicate rating",
        "movieId",
        _duplicated(candidates, {"user": user_ids, "item": item_ids}),
        lambda i: (
            f"duplicate rating: userId {user_ids[i]} already rated movieId {item_ids[i]} on line "
            f"{raw.lines[_first_with_key(candidates, [user_ids, item_ids], i)]}"
        ),
    )
    keep = checks.resolve(drop_invalid, dropped)
    return pd.DataFrame(
        {
            "user_id": _take(user_ids, keep),
            "item_id": _take(item_ids, keep),
            "rating": _take(ratings, keep).astype(np.float32),
            "timestamp": _take(timestamps, keep),
        }
    )


def _build_tags(
    raw: _RawCsv, known_items: np.ndarray, drop_invalid: bool, dropped: dict[str, dict[str, int]]
) -> pd.DataFrame:
    checks = _Checks(raw)
    user_ids = checks.int_column("userId", "an integer user id")
    item_ids = checks.int_column("movieId", "an integer movie id")
    timestamps = checks.int_column("timestamp", "an integer Unix timestamp")
    _unknown_items(checks, item_ids, known_items)
    keep = checks.resolve(drop_invalid, dropped)
    return pd.DataFrame(
        {
            "user_id": _take(user_ids, keep),
            "item_id": _take(item_ids, keep),
            "tag": _strings(raw.columns["tag"], keep),
            "timestamp": _take(timestamps, keep),
        }
    )


def _empty_tags() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.empty(0, dtype=np.int64),
            "item_id": np.empty(0, dtype=np.int64),
            "tag": pd.Series([], dtype=str),
            "timestamp": np.empty(0, dtype=np.int64),
        }
    )
