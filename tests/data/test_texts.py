"""Item texts: templates over a source's item fields, rendered with empty segments left out."""

from __future__ import annotations

import pandas as pd
import pytest

from lmrec.data.sources.movielens import MovieLensLatest, item_fields, top_tags
from lmrec.data.texts import render_item_texts, validate_template
from lmrec.errors import ConfigError


def test_item_text_skips_empty_segments_and_uses_top_tags():
    movies = pd.DataFrame(
        {
            "item_id": [1, 2],
            "title": ["Heat (1995)", "Odd, Film (2001)"],
            "genres": ["Action|Crime", "(no genres listed)"],
        }
    )
    tags = pd.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "item_id": [1, 1, 1, 1],
            "tag": ["Heist", "heist", "LA", "pacino"],
            "timestamp": [0] * 4,
        }
    )
    items = item_fields(movies, tags, max_tags=2)
    template = ["{title}", "Genres: {genres}", "Tags: {tags}"]
    texts = render_item_texts(items, MovieLensLatest.item_fields, template, ". ")
    assert texts == ["Heat (1995). Genres: Action, Crime. Tags: heist, la", "Odd, Film (2001)"]


def test_top_tags_orders_by_count_then_alphabetically():
    tags = pd.DataFrame({"item_id": [7] * 5, "tag": ["b", "a", "c", "c", "b"]})
    assert top_tags(tags, 3) == {7: "b, c, a"}


def test_template_field_the_source_lacks_names_both():
    with pytest.raises(ConfigError) as info:
        validate_template(["{title}", "Plot: {plot}"], ("title", "genres"), "my.Source")
    message = str(info.value)
    assert "{plot}" in message and "data source my.Source does not provide" in message
    assert "its item fields: title, genres" in message
    with pytest.raises(ConfigError, match="not a format string"):
        validate_template(["{title"], ("title",), "my.Source")
    with pytest.raises(ConfigError, match="non-empty list"):
        validate_template("{title}", ("title",), "my.Source")
