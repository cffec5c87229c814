"""The faiss item index against exact search on a synthetic 1M-item catalogue (dimension 128).

What is measured
    `--items` (1,000,000) vectors of `--dim` (128) drawn around `--clusters` (1,000) Gaussian centres (centres and
    within-cluster noise both N(0, 1) per dimension: item vectors of real models are clustered, uniform noise is
    the worst case no catalogue looks like), and `--queries` (2,000) queries drawn the same way. Exact search is
    faiss's `IndexFlatIP` (a brute-force inner product, BLAS-batched); the index is lmrec's default `ivf`
    (`lmrec.serving.index`: 4·√n cells, the cells scanned tuned to recall@10 >= 0.95 on half of the queries),
    measured on the other half, each searching the queries as one batch:
      recall@10     of the index's top 10 against the exact top 10;
      throughput    queries per second of both, and their ratio (the target: >= 10x);
      build         seconds to train and fill the index, and its size in bytes (faiss's serialised form).
    Also `hnsw` (32 links, efSearch 128) with `--hnsw`, which builds far slower on 2 cores.

Why
    The serving issue's acceptance check: an approximate index is worth it only when it is much faster than exact
    search at a recall close to it. Quick: 20,000 items, 200 queries.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from lmrec.bench import tables
from lmrec.bench.registry import Benchmark, Context, Result, register

TARGETS = {"recall": 0.95, "speedup": 10.0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run index`."""
    parser.add_argument("--items", type=int, default=1_000_000, help="catalogue size (1,000,000)")
    parser.add_argument("--dim", type=int, default=128, help="vector width (128)")
    parser.add_argument("--clusters", type=int, default=1000, help="Gaussian centres (1,000)")
    parser.add_argument("--queries", type=int, default=2000, help="queries, half to tune and half to report (2,000)")
    parser.add_argument("--hnsw", action="store_true", help="also build and measure an hnsw index")
    parser.add_argument("--seed", type=int, default=0)


def synthetic(items: int, queries: int, dim: int, clusters: int, seed: int):
    """(catalogue [items, dim], queries [queries, dim]) around shared Gaussian centres, float32."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)

    def draw(n: int) -> np.ndarray:
        return centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)).astype(np.float32)

    return draw(items), draw(queries)


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: 20,000 items): its figures, options and facts, for the record."""
    import faiss
    import numpy as np

    from lmrec.bench.record import usable_cores
    from lmrec.serving.index import IndexOptions, build_and_measure

    items, queries = (20_000, 200) if ctx.quick else (args.items, args.queries)
    began = time.perf_counter()
    vectors, asked = synthetic(items, queries, args.dim, args.clusters, args.seed)
    generate_s = time.perf_counter() - began
    kinds = [IndexOptions("ivf")] + ([IndexOptions("hnsw")] if args.hnsw else [])
    reports = {}
    for options in kinds:
        _, report = build_and_measure(vectors, asked, options)
        reports[options.kind] = asdict(report)
        ctx.log(
            f"{options.kind}: recall@10 {report.recall:.4f}, {report.index_qps:.0f} vs {report.exact_qps:.0f} "
            f"queries/s exact ({report.speedup:.1f}x), built in {report.build_seconds:.1f} s"
        )
    ivf = reports["ivf"]
    checks = {"recall_in_unit_interval": 0.0 <= ivf["recall"] <= 1.0}
    if not ctx.quick:
        checks["recall_within_target"] = ivf["recall"] >= TARGETS["recall"]
        checks["speedup_within_target"] = ivf["speedup"] >= TARGETS["speedup"]
    figures = {
        "generate_s": generate_s,
        "vector_bytes": int(vectors.nbytes),
        **{
            kind: {k: v for k, v in r.items() if k != "kind" and not isinstance(v, dict)} for kind, r in reports.items()
        },
        "parameters": {kind: r["parameters"] for kind, r in reports.items()},
    }
    return {
        "figures": figures,
        "options": {
            "items": items,
            "queries": queries,
            "dim": args.dim,
            "clusters": args.clusters,
            "seed": args.seed,
            "kinds": list(reports),
        },
        "facts": {"faiss": faiss.__version__, "numpy": np.__version__, "usable_cores": usable_cores()},
        "reference": {"name": "faiss IndexFlatIP (exact)", "version": faiss.__version__},
        "checks": checks,
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        f = r["figures"]
        for kind in r.get("options", {}).get("kinds", ["ivf"]):
            m = f.get(kind, {})
            rows.append(
                [
                    tables.run_cell(r),
                    kind,
                    f"{tables.cell(m.get('items'))} × {tables.cell(m.get('dim'))}",
                    tables.cell(m.get("recall"), ".4f"),
                    tables.cell(m.get("index_qps"), ".0f"),
                    tables.cell(m.get("exact_qps"), ".0f"),
                    tables.ratio(m.get("speedup"), ".1f"),
                    tables.cell(m.get("build_seconds"), ".1f"),
                    tables.cell((m.get("index_bytes") or 0) / 1e6, ".0f"),
                    str(f.get("parameters", {}).get(kind, "")),
                ]
            )
    header = [
        "run",
        "index",
        "items × dim",
        "recall@10",
        "queries/s",
        "exact queries/s",
        "speed-up",
        "build s",
        "MB",
        "parameters",
    ]
    return tables.table(header, rows)


register(
    Benchmark(
        name="index",
        description="faiss ivf index vs exact search on 1M x 128 synthetic items: recall@10 >= 0.95 at >= 10x",
        run=run,
        add_arguments=add_arguments,
        table=table,
        requires=("faiss-cpu",),
        module=__name__,
    )
)
