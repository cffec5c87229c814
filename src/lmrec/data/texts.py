"""Item texts: what the language model reads about each item, rendered from the source's item fields.

A template is a list of segments such as "Genres: {genres}"; a segment whose fields are all empty is left out,
so a movie without tags reads "Heat (1995). Genres: Action, Crime" rather than ending in "Tags: .". The fields a
template may use are the ones its source declares (`Source.item_fields`), checked before any file is read.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import pandas as pd

from lmrec.errors import ConfigError


def template_fields(segment: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(segment) if name is not None]


def validate_template(segments: Sequence[str], fields: Sequence[str], source: str) -> None:
    """Fail at config time, not after minutes of work, on a field the source does not provide."""
    if isinstance(segments, str) or not segments:
        raise ConfigError(
            "data.text.template must be a non-empty list of segments, e.g. ['{title}', 'Genres: {genres}']"
        )
    for segment in segments:
        if not isinstance(segment, str):
            raise ConfigError(f"data.text.template segment {segment!r} is not a string; quote it, e.g. '{{title}}'")
        try:
            names = template_fields(segment)
        except ValueError as err:  # an unmatched brace
            raise ConfigError(f"data.text.template segment {segment!r} is not a format string: {err}") from None
        for name in names:
            if name not in fields:
                raise ConfigError(
                    f"data.text.template segment {segment!r} uses field {{{name}}}, which data source {source} does "
                    f"not provide; its item fields: {', '.join(fields) or 'none'}"
                )


def render(segments: Sequence[str], separator: str, values: dict[str, str]) -> str:
    parts = []
    for segment in segments:
        names = template_fields(segment)
        if names and all(not values[name] for name in names):
            continue
        parts.append(segment.format(**values))
    return separator.join(parts)


def render_item_texts(items: pd.DataFrame, fields: Sequence[str], segments: Sequence[str], separator: str) -> list[str]:
    """One text per row of `items` (which holds a str column per field), in row order."""
    columns = [items[name].astype(str).tolist() for name in fields]
    rows = zip(*columns, strict=True) if columns else [()] * len(items)
    return [render(segments, separator, dict(zip(fields, row, strict=True))) for row in rows]
