"""MIND preparation speed: writes official-format MIND folders of a given size, then times lmrec reading them.

What is measured
    `MIND.read()` (news files, both behaviors files, history rows, split column, duplicate merge) on synthetic
    `MINDsmall_train` / `MINDsmall_dev` folders in the exact official layout; then `impressions("test")` (already
    parsed by `read`) and `index_impressions` (ids -> run indices, tie-break keys), and one pass of the MIND metrics
    over every test impression with random scores. The defaults are MIND-small's shape (about 65,000 news, 50,000
    users, 157,000 train and 73,000 dev impressions of about 37 candidates, histories of about 30 clicks);
    `--scale 0.01` is a quick check, `--scale 15` approaches MIND-large's training file.

    python scripts/bench_mind.py                 # MIND-small shape
    python scripts/bench_mind.py --scale 0.01    # a few seconds
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lmrec.data.impressions import index_impressions
from lmrec.data.sources.mind import MIND
from lmrec.tasks.mind_metrics import ImpressionMetricAccumulator


def write_split(folder: Path, rng: np.random.Generator, news: int, users: int, impressions: int, start: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "news.tsv", "w", encoding="utf-8") as out:
        for i in range(1, news + 1):
            entities = '[{"Label": "X", "Type": "P", "WikidataId": "Q1", "Confidence": 1.0, "OccurrenceOffsets": [0]}]'
            out.write(f'N{i}\tnews\tnewsus\tA "quoted" title {i}\tAbstract of {i}.\thttps://x/{i}\t{entities}\t[]\n')
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every size (1: MIND-small)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    news, users = max(10, int(65_000 * args.scale)), max(5, int(50_000 * args.scale))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        write_split(root / "MINDsmall_train", rng, news, users, max(5, int(157_000 * args.scale)), 1573344000)
        write_split(root / "MINDsmall_dev", rng, news, users, max(5, int(73_000 * args.scale)), 1573862400)
        print(f"wrote the folders in {time.perf_counter() - began:.1f} s")
        source = MIND(root, duplicates="first", val_from="train", val_share=0.1)
        began = time.perf_counter()
        tables = source.read()
        read_s = time.perf_counter() - began
        inter = tables.interactions
        print(f"read: {read_s:.2f} s ({len(tables.items)} news, {len(inter)} interactions, splits "
              f"{inter['split'].value_counts().to_dict()})")  # fmt: skip
        began = time.perf_counter()
        test = source.impressions("test")
        users_ids = np.sort(inter["user_id"].unique())
        dataset = index_impressions(test, users_ids, tables.items["item_id"].to_numpy(), seed=0, single_class="skip")
        index_s = time.perf_counter() - began
        print(f"test impressions: {len(test)} ({len(test.candidates)} candidates), indexed in {index_s:.2f} s")
        metric = ImpressionMetricAccumulator()
        began = time.perf_counter()
        for start in range(0, len(dataset), 1024):
            batch = dataset.__getitems__(list(range(start, min(start + 1024, len(dataset)))))
            metric.update(torch.rand(len(batch["items"])), batch["labels"], batch["segments"], batch["tiebreak"])
        values = {k: round(v.item(), 4) for k, v in metric.compute().items()}
        print(f"metrics over all test impressions in {time.perf_counter() - began:.2f} s: {values}")


if __name__ == "__main__":
    main()
