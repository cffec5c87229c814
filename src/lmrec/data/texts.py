"""Item texts: what the language model reads about each item, rendered from the source's item fields.

A template is a list of segments such as "Genres: {genres}"; a segment whose fields are all empty is left out,
so a movie without tags reads "Heat (1995). Genres: Action, Crime" rather than ending in "Tags: .". The fields a
template may use are the ones its source declares (`Source.item_fields`), checked before any file is read.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from lmrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from lmrec.data.options import UserTextOptions
    from lmrec.data.sources.base import Source

log = logging.getLogger(__name__)


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


def user_text_options(options: UserTextOptions, source: Source) -> dict[str, Any]:
    """`data.user_text` with its default template (one `Field: {field}` segment per user field of the source).

    Checked now, before any file is read, when a template is given; without one a source without user fields is
    only refused when a user-text tower asks for the texts (`render_user_texts`)."""
    template = options.template
    if template is None:
        template = [f"{field.replace('_', ' ').capitalize()}: {{{field}}}" for field in source.user_fields]
    elif source.user_fields:
        validate_template(list(template), source.user_fields, source.name)
    return {"template": [str(t) for t in template], "separator": str(options.separator)}


def render_user_texts(users: Any, source: Source, options: dict[str, Any]) -> list[str]:
    fields = list(source.user_fields)
    if not fields or not options["template"]:
        raise ConfigError(
            f"data source {source.name} has no user text (no user fields), so model/user_tower=text has nothing to "
            "read; MovieLens has the tags users wrote (data.source.max_user_tags=N) and 100K/1M demographics, Amazon "
            "the user's reviews (data.source.user_reviews=true)"
        )
    validate_template(options["template"], fields, source.name)
    frame = users.reindex(columns=fields).fillna("").astype(str)
    texts = render_item_texts(frame, fields, options["template"], options["separator"])
    with_text = sum(1 for t in texts if t.strip())
    if with_text == 0:
        raise DataError(
            f"data source {source.name}: no user has any text in the fields {', '.join(fields)}; "
            "model/user_tower=text would read nothing"
        )
    log.info("user texts: %d of %d users have text (the others read as an empty text)", with_text, len(texts))
    return texts
