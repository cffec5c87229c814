"""Amazon review data 2018 (Ni et al.; also the 2014 dumps), one category: the files UniSRec and Recformer use.

- reviews `<Category>.json.gz` (or the 5-core `<Category>_5.json.gz`: set `reviews_file`): `reviewerID`, `asin`,
  `overall` (1.0-5.0), `unixReviewTime` (Unix seconds), `summary`, `reviewText`, and fields lmrec does not read;
- metadata `meta_<Category>.json.gz`: `asin`, `title`, `brand`, `category` (list; the 2014 dumps: `categories`,
  a list of lists), `main_cat`, `feature` (list), `description` (list, or a string in 2014), `details`.

Strict JSON lines, or the older Python dict literals (`{'asin': ...}`) read with `ast.literal_eval` (never `eval`):
the default `syntax: auto` tries JSON first, then a literal. The 2018 metadata repeats some items; the default
`duplicate_items: first` keeps each item's first record and counts the rest.
Item fields as for 2023: `title`, `brand`, `categories`, `main_category`, `features`, `description`, `details`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from lmrec.data.sources.amazon import AmazonSource
from lmrec.data.sources.amazon_fields import Layout

LAYOUT_2018 = Layout(
    user="reviewerID",
    item="asin",
    rating="overall",
    time="unixReviewTime",
    time_unit="s",
    review_title="summary",
    review_text="reviewText",
    meta_item="asin",
    fields={
        "title": ("title",),
        "brand": ("brand",),
        "categories": ("category", "categories"),
        "main_category": ("main_cat",),
        "features": ("feature",),
        "description": ("description",),
        "details": ("details",),
    },
    joiners={"categories": ", "},
)


class Amazon2018(AmazonSource):
    """One category of the 2018 (or 2014) Amazon review data."""

    layout: ClassVar[Layout] = LAYOUT_2018
    default_syntax: ClassVar[str] = "auto"

    def __init__(self, root: str | Path, category: str, duplicate_items: str = "first", **kwargs: Any) -> None:
        super().__init__(root, category, duplicate_items=duplicate_items, **kwargs)
