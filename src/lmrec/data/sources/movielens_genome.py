"""The MovieLens tag genome (20M, 25M): each movie's relevance score for each of ~1,100 tags, as item text.

`genome-tags.csv` (tagId,tag) names the tags; `genome-scores.csv` (movieId,tagId,relevance) holds one score in
[0, 1] per (movie, tag) pair, ~15 million rows in 25M. A movie's text field `genome` is its N most relevant tags,
most relevant first (equal relevance: lower tagId first, so the text is reproducible).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmrec.data.io.checks import RowChecks, take
from lmrec.data.io.readers import TextFormat, read_text_table

GENOME_SCORES, GENOME_TAGS = "genome-scores.csv", "genome-tags.csv"
GENOME_FILES = (GENOME_SCORES, GENOME_TAGS)
_CSV = TextFormat()


def genome_tags(
    root: Path, known_items: np.ndarray, top_n: int, drop_invalid: bool, dropped: dict[str, dict[str, int]]
) -> dict[int, str]:
    """movieId -> its `top_n` most relevant genome tags, ", "-joined. Every tagId must be in genome-tags.csv and
    every movieId in movies.csv; relevance must be a number in [0, 1]."""
    checks = RowChecks(read_text_table(Path(root) / GENOME_TAGS, _CSV, ("tagId", "tag"), columnar=True))
    tag_ids = checks.unique_ids("tagId", "an integer tag id")
    keep = checks.resolve(drop_invalid, dropped)
    tag_ids, names = take(tag_ids, keep), checks.strings("tag", keep).str.strip().to_numpy(dtype=object)

    checks = RowChecks(
        read_text_table(Path(root) / GENOME_SCORES, _CSV, ("movieId", "tagId", "relevance"), columnar=True)
    )
    movies = checks.integers("movieId", "an integer movie id")
    tags = checks.integers("tagId", "an integer tag id")
    relevance = checks.numbers("relevance", 0.0, 1.0)
    checks.known(
        "movieId",
        movies,
        known_items,
        "unknown item",
        lambda i: f"unknown item: movieId {movies[i]} is not in movies.csv",
    )
    checks.known(
        "tagId", tags, tag_ids, "unknown tag", lambda i: f"unknown tag: tagId {tags[i]} is not in {GENOME_TAGS}"
    )
    keep = checks.resolve(drop_invalid, dropped)
    movies, tags, relevance = take(movies, keep), take(tags, keep), take(relevance, keep)
    # One sort for all movies (no per-movie Python loop): by movie, then relevance descending, then tag id.
    order = np.lexsort((tags, -relevance, movies))
    movies, tags = movies[order], tags[order]
    starts = np.flatnonzero(np.r_[True, movies[1:] != movies[:-1]])
    rank = np.arange(len(movies)) - np.repeat(starts, np.diff(np.r_[starts, len(movies)]))
    best = rank < top_n
    movies, tags = movies[best], tags[best]
    sorter = np.argsort(tag_ids)
    words = names[sorter[np.searchsorted(tag_ids, tags, sorter=sorter)]]
    bounds = np.flatnonzero(np.r_[True, movies[1:] != movies[:-1], True]) if len(movies) else np.array([0])
    return {int(movies[a]): ", ".join(words[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)}
