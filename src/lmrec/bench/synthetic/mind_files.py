"""MIND folders in the official layout (news.tsv, behaviors.tsv), of any size, for the MIND preparation benchmark.

News rows carry every column of the release (a quoted title, an abstract, a URL and the entity JSON); behaviours
rows an impression id, a user, an official-format time, a click history and candidates with their 0/1 labels
drawn with Zipf-skewed popularity (one click per impression).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: MIND-small's shape at scale 1: news, users, train impressions, dev impressions.
SMALL = {"news": 65_000, "users": 50_000, "train": 157_000, "dev": 73_000}
ENTITIES = '[{"Label": "X", "Type": "P", "WikidataId": "Q1", "Confidence": 1.0, "OccurrenceOffsets": [0]}]'


def write_split(folder: Path, rng: np.random.Generator, news: int, users: int, impressions: int, start: int) -> None:
    """One MIND folder (e.g. MINDsmall_train) with `impressions` behaviours rows starting at Unix time `start`."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "news.tsv", "w", encoding="utf-8") as out:
        for i in range(1, news + 1):
            out.write(f'N{i}\tnews\tnewsus\tA "quoted" title {i}\tAbstract of {i}.\thttps://x/{i}\t{ENTITIES}\t[]\n')
    popular = rng.zipf(1.3, size=impressions * 40) % news + 1
    with open(folder / "behaviors.tsv", "w", encoding="utf-8") as out:
        cursor = 0
        for i in range(1, impressions + 1):
            user = int(rng.integers(1, users + 1))
            seconds = start + int(rng.integers(0, 6 * 86400))
            stamp = time.strftime("%m/%d/%Y %I:%M:%S %p", time.gmtime(seconds)).lstrip("0").replace("/0", "/")
            history = " ".join(f"N{(user * 7 + j) % news + 1}" for j in range(user % 60))
            n = int(rng.integers(5, 70))
            shown = np.unique(popular[cursor : cursor + n])
            cursor = (cursor + n) % (len(popular) - 80)
            clicked = rng.integers(0, len(shown))
            candidates = " ".join(f"N{c}-{int(j == clicked)}" for j, c in enumerate(shown))
            out.write(f"{i}\tU{user}\t{stamp}\t{history}\t{candidates}\n")


def write_mind(root: Path, scale: float, seed: int = 0) -> dict[str, int]:
    """MINDsmall_train and MINDsmall_dev under `root` at `scale` times MIND-small's size; the sizes written."""
    rng = np.random.default_rng(seed)
    sizes = {key: max(10 if key == "news" else 5, int(value * scale)) for key, value in SMALL.items()}
    write_split(root / "MINDsmall_train", rng, sizes["news"], sizes["users"], sizes["train"], 1573344000)
    write_split(root / "MINDsmall_dev", rng, sizes["news"], sizes["users"], sizes["dev"], 1573862400)
    return sizes
