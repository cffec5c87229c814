"""MIND preparation speed: official-format MIND folders of a given size, read by lmrec's MIND source.

What is measured
    On synthetic `MINDsmall_train` / `MINDsmall_dev` folders in the exact official layout
    (`lmrec.bench.synthetic.mind_files`), the source `data=mind_small` configures (built by `build_data`, as
    lmrec-train builds it, with its root pointed at them):
      read       `source.read()`: news files, both behaviours files, history rows, split column, duplicate merge;
      index      `impressions("test")` (already parsed by `read`) and `index_impressions` (ids -> run indices,
                 tie-break keys);
      metrics    one pass of the MIND metrics (`ImpressionMetricAccumulator`) over every test impression with random
                 scores.
    `--scale 1` is MIND-small's shape (about 65,000 news, 50,000 users, 157,000 train and 73,000 dev impressions of
    about 37 candidates, histories of about 30 clicks); `--scale 15` approaches MIND-large's training file.

Why
    MIND's files are large and row-by-row text; reading them must not dominate a run. Quick: scale 0.002.
"""

from __future__ import annotations

import argparse
import time

from lmrec.bench import tables
from lmrec.bench.configured import compose
from lmrec.bench.registry import Benchmark, Context, Result, register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run mind`."""
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every size (1: MIND-small)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    import numpy as np
    import torch

    from lmrec.bench.synthetic.mind_files import write_mind
    from lmrec.cli.components import build_data
    from lmrec.data.impressions import index_impressions
    from lmrec.tasks.mind_metrics import ImpressionMetricAccumulator

    scale = 0.002 if ctx.quick else args.scale
    root = ctx.workdir / "mind"
    began = time.perf_counter()
    sizes = write_mind(root, scale, args.seed)
    write_s = time.perf_counter() - began
    overrides = ["data=mind_small", f"data.source.root={root}", "task=impressions", f"seed={args.seed}"]
    _, datamodule = build_data(compose(overrides, ctx.workdir, ctx.cache_dir))
    source = datamodule.source
    began = time.perf_counter()
    tables_ = source.read()
    read_s = time.perf_counter() - began
    inter = tables_.interactions
    began = time.perf_counter()
    test = source.impressions("test")
    user_ids = np.sort(inter["user_id"].unique())
    dataset = index_impressions(test, user_ids, tables_.items["item_id"].to_numpy(), seed=0, single_class="skip")
    index_s = time.perf_counter() - began
    metric = ImpressionMetricAccumulator()
    generator = torch.Generator().manual_seed(args.seed)
    began = time.perf_counter()
    for start in range(0, len(dataset), 1024):
        batch = dataset.__getitems__(list(range(start, min(start + 1024, len(dataset)))))
        scores = torch.rand(len(batch["items"]), generator=generator)
        metric.update(scores, batch["labels"], batch["segments"], batch["tiebreak"])
    values = {k: float(v) for k, v in metric.compute().items()}
    metrics_s = time.perf_counter() - began
    splits = {str(k): int(v) for k, v in inter["split"].value_counts().items()}
    ctx.log(f"read {read_s:.2f} s, index {index_s:.2f} s, metrics {metrics_s:.2f} s")
    return {
        "figures": {
            "sizes": sizes,
            "news": len(tables_.items),
            "interactions": len(inter),
            "interactions_by_split": splits,
            "test_impressions": len(test),
            "test_candidates": len(test.candidates),
            "write_s": write_s,
            "read_s": read_s,
            "index_s": index_s,
            "metrics_s": metrics_s,
            "random_score_metrics": values,
        },
        "options": {"scale": scale, "seed": args.seed},
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        f = r["figures"]
        rows.append(
            [
                tables.run_cell(r),
                tables.cell(r.get("options", {}).get("scale"), "g"),
                tables.cell(f.get("news")),
                tables.cell(f.get("interactions")),
                tables.cell(f.get("test_impressions")),
                tables.cell(f.get("read_s"), ".2f"),
                tables.cell(f.get("index_s"), ".2f"),
                tables.cell(f.get("metrics_s"), ".2f"),
            ]
        )
    header = ["run", "scale", "news", "interactions", "test impressions", "read s", "index s", "metrics s"]
    return tables.table(header, rows)


register(
    Benchmark(
        name="mind",
        description="MIND preparation: reading official-format MIND folders, indexing impressions, MIND metrics",
        run=run,
        add_arguments=add_arguments,
        table=table,
        module=__name__,
    )
)
