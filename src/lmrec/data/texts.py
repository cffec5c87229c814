"""Item texts: what the language model reads about each item.

A template is a list of segments such as "Genres: {genres}"; a segment whose fields are all empty is left out,
so a movie without tags reads "Heat (1995). Genres: Action, Crime" rather than ending in "Tags: .".
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import pandas as pd

from lmrec.errors import ConfigError

FIELDS = ("title", "genres", "tags")
NO_GENRES = "(no genres listed)"


def template_fields(segment: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(segment) if name is not None]


def validate_template(segments: Sequence[str]) -> None:
    """Fail at config time, not after minutes of work, on a field the data does not have."""
    if isinstance(segments, str) or not segments:
        raise ConfigError(
            "data.text.template must be a non-empty list of segments, e.g. ['{title}', 'Genres: {genres}']"
        )  # noqa: E501
    for segment in segments:
        for name in template_fields(segment):
            if name not in FIELDS:
                raise ConfigError(
                    f"data.text.template segment {segment!r} uses unknown field {{{name}}}; known fields: {FIELDS}"
                )


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


def render(segments: Sequence[str], separator: str, values: dict[str, str]) -> str:
    parts = []
    for segment in segments:
        names = template_fields(segment)
        if names and all(not values[name] for name in names):
            continue
        parts.append(segment.format(**values))
    return separator.join(parts)


def build_item_texts(
    movies: pd.DataFrame, tags: pd.DataFrame, segments: Sequence[str], separator: str = ". ", max_tags: int = 5
) -> list[str]:
    """One text per row of `movies`, in the same order."""
    validate_template(segments)
    item_tags = top_tags(tags, max_tags)
    texts = []
    for item_id, title, genres in zip(movies["item_id"], movies["title"], movies["genres"], strict=True):
        genre_text = "" if genres == NO_GENRES else ", ".join(g for g in str(genres).split("|") if g)
        values = {"title": str(title).strip(), "genres": genre_text, "tags": item_tags.get(int(item_id), "")}
        texts.append(render(segments, separator, values))
    return texts
