"""MIND `behaviors.tsv`: one impression per line, parsed into an `Impressions` log with every field checked.

Layout (tab-separated, no header): `impression id`, `user id`, `time` (`11/15/2019 8:55:22 AM`: month/day/year,
12-hour clock, read as UTC), `history` (space-separated news ids the user clicked before; may be empty) and
`impressions` (space-separated `N123-1` clicked / `N456-0` not clicked; the MINDlarge test split carries bare ids).

The token-level checks run over Arrow arrays (split, regex, set membership in C++): MINDlarge's training file
holds about 80 million candidate tokens, which a Python loop would take minutes over. A bad token is reported
with its impression's line and the field it sits in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lmrec.data.impressions import Impressions
from lmrec.data.io.checks import RowChecks, describe, take
from lmrec.data.io.readers import TextFormat, read_text_table

BEHAVIORS = ("impression id", "user id", "time", "history", "impressions")
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
BEHAVIORS_FORMAT = TextFormat("\t", header=False, names=BEHAVIORS, quoted=False)
_LABELLED = r"^(?P<news>\S+)-(?P<label>[01])$"


def _tokens(values: list[str]) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Space-separated tokens of each value: (tokens, the row of each token, tokens per row); empty values hold none."""
    lists = pc.utf8_split_whitespace(pa.array(values, type=pa.string()))
    flat = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists).to_numpy()
    keep = pc.not_equal(flat, "")
    flat, rows = flat.filter(keep), rows[keep.to_numpy(zero_copy_only=False)]
    return flat, rows, np.bincount(rows, minlength=len(values)).astype(np.int64)


def _flag_tokens(
    checks: RowChecks,
    column: str,
    reason: str,
    bad_tokens: np.ndarray,
    rows: np.ndarray,
    tokens: pa.Array,
    message: str,
) -> None:
    """Flag the rows holding a bad token; the message quotes the row's first bad token."""
    first_bad: dict[int, str] = {}
    for position in np.flatnonzero(bad_tokens)[::-1]:  # reversed: the first bad token of a row is written last
        first_bad[int(rows[position])] = tokens[int(position)].as_py()
    mask = np.zeros(len(checks.raw), dtype=bool)
    mask[list(first_bad)] = True
    checks.add(reason, column, mask, lambda i: message.format(token=describe(first_bad[i])))


def read_behaviors(
    path: Path,
    known_news: np.ndarray,
    news_file: str,
    labelled: bool,
    drop_invalid: bool,
    dropped: dict[str, dict[str, int]],
    digests: dict[str, str] | None = None,
) -> Impressions:
    """Parse and check one behaviors file; news ids must be among `known_news` (defined in `news_file`).

    `labelled`: every candidate must carry `-1`/`-0` (train and dev); the test split's bare ids get label -1.
    Rows failing a check raise `DataValidationError` (file, line, field), or are dropped and counted.
    """
    raw = read_text_table(path, BEHAVIORS_FORMAT, BEHAVIORS, digests)
    checks = RowChecks(raw)
    impression_ids = checks.unique_ids("impression id", "an integer impression id")
    checks.add(
        "invalid impression id",
        "impression id",
        impression_ids < 1,
        lambda i: f"expected a positive impression id, got {impression_ids[i]}",
    )
    users = np.asarray(raw.columns["user id"], dtype=object)
    checks.add("invalid user id", "user id", users == "", lambda i: "expected a user id, got an empty field")
    times = pa.array(raw.columns["time"], type=pa.string())
    parsed = pc.strptime(times, format=TIME_FORMAT, unit="s", error_is_null=True)
    bad_time = pc.is_null(parsed).to_numpy(zero_copy_only=False)
    checks.add(
        "invalid time",
        "time",
        bad_time,
        lambda i: f"expected a time like 11/15/2019 8:55:22 AM, got {describe(raw.columns['time'][i])}",
    )
    timestamps = pc.cast(pc.fill_null(parsed, pa.scalar(0, pa.timestamp("s"))), pa.int64()).to_numpy()
    known = pa.array(known_news.tolist(), type=pa.string())

    history, history_rows, history_lengths = _tokens(raw.columns["history"])
    history_codes = pc.index_in(history, value_set=known)
    unknown = pc.is_null(history_codes).to_numpy(zero_copy_only=False)
    _flag_tokens(
        checks, "history", "unknown news", unknown, history_rows, history, f"unknown news {{token}}: not in {news_file}"
    )

    shown, shown_rows, shown_lengths = _tokens(raw.columns["impressions"])
    if labelled:
        parts = pc.extract_regex(shown, _LABELLED)
        malformed = pc.is_null(parts).to_numpy(zero_copy_only=False)
        _flag_tokens(
            checks,
            "impressions",
            "invalid impressions",
            malformed,
            shown_rows,
            shown,
            "expected candidates like N123-1 (clicked) or N456-0 (not clicked), got {token}",
        )
        news = pc.fill_null(pc.struct_field(parts, "news"), "")
        labels = pc.cast(pc.fill_null(pc.struct_field(parts, "label"), "0"), pa.int8()).to_numpy()
    else:
        news, labels = shown, np.full(len(shown), -1, dtype=np.int8)
        malformed = np.zeros(len(shown), dtype=bool)
    codes = pc.index_in(news, value_set=known)
    unknown = pc.is_null(codes).to_numpy(zero_copy_only=False) & ~malformed
    _flag_tokens(
        checks, "impressions", "unknown news", unknown, shown_rows, news, f"unknown news {{token}}: not in {news_file}"
    )
    own: dict[str, dict[str, int]] = {}
    keep = checks.resolve(drop_invalid, own)
    for name, counts in own.items():  # every MIND folder has a behaviors.tsv: name the folder too
        dropped[f"{path.parent.name}/{name}"] = counts
    row_keep = np.ones(len(raw), dtype=bool) if keep is None else keep
    return Impressions(
        path=path,
        lines=take(raw.lines, keep),
        impression_ids=take(impression_ids, keep),
        users=take(users, keep),
        timestamps=take(timestamps, keep),
        items=known_news,
        offsets=_offsets(shown_lengths[row_keep]),
        candidates=_codes(codes)[row_keep[shown_rows]],
        labels=labels[row_keep[shown_rows]],
        history_offsets=_offsets(history_lengths[row_keep]),
        history=_codes(history_codes)[row_keep[history_rows]],
    )


def _codes(codes: pa.Array) -> np.ndarray:
    """Positions in the news table as int32 (an unknown news, already flagged, as 0)."""
    return pc.fill_null(codes, 0).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out
