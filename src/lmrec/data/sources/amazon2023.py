"""Amazon Reviews 2023 (McAuley Lab), one category: `<Category>.jsonl` reviews and `meta_<Category>.jsonl` items.

Files as the release distributes them, plain or gzipped (`.jsonl` or `.jsonl.gz`), one JSON object per line:

- reviews: `user_id`, `parent_asin` (the item: reviews of a product's variants share it, and the metadata is keyed
  by it), `rating` (1.0-5.0), `timestamp` (Unix time in **milliseconds**; lmrec keeps seconds, the floor of ms /
  1000), `title`, `text`, and fields lmrec does not read (`asin`, `images`, `helpful_vote`, `verified_purchase`);
- metadata: `parent_asin`, `title`, `store`, `categories` (list), `main_category`, `features` (list),
  `description` (list), `details` (dict), and fields lmrec does not read (`price`, `images`, ...).

Item fields: `title`, `brand` (`store`, else `details["Brand"]`), `categories` (", "-joined), `main_category`,
`features`, `description` (" "-joined), `details` ("key: value; ..."). With `from_hub`, a folder that lacks the
files gets them from the hub dataset through the HF `datasets` library, written once in the release's own format.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from lmrec.atomic import atomic_path
from lmrec.data.sources.amazon import AmazonSource
from lmrec.data.sources.amazon_fields import EXTENSIONS, Layout
from lmrec.errors import ConfigError, MissingInputError

log = logging.getLogger(__name__)

HUB_ID = "McAuley-Lab/Amazon-Reviews-2023"

LAYOUT_2023 = Layout(
    user="user_id",
    item="parent_asin",
    rating="rating",
    time="timestamp",
    time_unit="ms",
    review_title="title",
    review_text="text",
    meta_item="parent_asin",
    fields={
        "title": ("title",),
        "brand": ("store", "details.Brand"),
        "categories": ("categories",),
        "main_category": ("main_category",),
        "features": ("features",),
        "description": ("description",),
        "details": ("details",),
    },
    joiners={"categories": ", "},
)


def export_from_hub(category: str, root: Path, names: list[str], trust_remote_code: bool = False) -> list[Path]:
    """Write `<name>.jsonl` into `root` for each of `names` (`<category>` and/or `meta_<category>`) from the hub
    dataset (configs `raw_review_<category>` and `raw_meta_<category>`, split `full`). Needs `datasets` and a
    network or a warm HF cache; raises MissingInputError saying what to do otherwise."""
    try:
        import datasets
    except ImportError:
        raise MissingInputError(
            f"data.source.from_hub needs the HF `datasets` library (pip install datasets), or put {category}.jsonl "
            f"and meta_{category}.jsonl (or .jsonl.gz) into {root}"
        ) from None
    written = []
    for name in names:
        config = f"raw_meta_{category}" if name.startswith("meta_") else f"raw_review_{category}"
        try:
            dataset = datasets.load_dataset(HUB_ID, config, split="full", trust_remote_code=trust_remote_code)
        except Exception as err:  # offline, unknown category, a datasets version without script support
            raise MissingInputError(
                f"could not load {HUB_ID} config {config} ({type(err).__name__}: {err}); without a network or an HF "
                f"cache, download {name}.jsonl.gz from the release page into {root}"
            ) from None
        target = Path(root) / f"{name}.jsonl"
        log.info("writing %s (%d records) from %s", target, len(dataset), HUB_ID)
        with atomic_path(target) as tmp:
            dataset.to_json(str(tmp), lines=True, force_ascii=False)
        written.append(target)
    return written


class Amazon2023(AmazonSource):
    """One category of Amazon Reviews 2023. `from_hub`: fetch missing files through `datasets` (see module doc)."""

    layout: ClassVar[Layout] = LAYOUT_2023

    def __init__(
        self,
        root: str | Path,
        category: str = "All_Beauty",
        from_hub: bool = False,
        trust_remote_code: bool = False,
        **kwargs: Any,
    ) -> None:
        """`trust_remote_code`: the hub dataset is read by a loading script it ships, code from the hub that runs
        on this machine; lmrec runs it only when the user says so (refused before anything is read otherwise)."""
        super().__init__(root, category, **kwargs)
        self.from_hub, self.trust_remote_code = bool(from_hub), bool(trust_remote_code)
        if self.from_hub and not self.trust_remote_code:
            raise ConfigError(
                f"data.source.from_hub=true reads {HUB_ID} through its loading script, which runs code from the hub "
                "on this machine; allow it with data.source.trust_remote_code=true, or download the category's "
                "files into data.source.root instead (docs/datasets_amazon.md)"
            )

    def files(self) -> list[str]:
        if self.from_hub and not (self.reviews_file or self.meta_file):
            missing = [s for s in self.stems() if not any((self.root / (s + e)).is_file() for e in EXTENSIONS)]
            if missing:
                export_from_hub(self.category, self.root, missing, self.trust_remote_code)
        return super().files()
