"""An approximate nearest-neighbour index over item vectors (faiss, the `serve` extra), measured against exact
search on the same vectors.

faiss does the indexing; this module chooses its parameters from the catalogue's size, and records what the index
costs and how far it is from exact: recall@k against `IndexFlatIP` (exact maximum inner product) on held-out
queries, queries per second of both, build seconds and bytes. An index is only as good as its recall, so every
index this module builds carries that number beside it (`index.json`).

Kinds: `ivf` (inverted lists over k-means cells; `nprobe` cells are scanned per query) and `hnsw` (a navigable
small-world graph). Scores are inner products: give the vectors a dot-product head scores (with the item bias
appended, `lmrec.serving.embeddings`) to rank as the model does; normalise them first for cosine neighbours.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmrec.atomic import atomic_path
from lmrec.errors import ConfigError

KINDS = ("ivf", "hnsw")


def require_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError("an index needs faiss: pip install 'lmrec[serve]'") from None
    return faiss


@dataclass
class IndexOptions:
    """`kind`: ivf or hnsw; `cells`: ivf's k-means cells (None: 4·√n); `probe`: cells scanned per query (None:
    cells/512, at least 8); `links`: hnsw's neighbours per node; `search_depth`: hnsw's efSearch."""

    kind: str = "ivf"
    cells: int | None = None
    probe: int | None = None
    links: int = 32
    search_depth: int = 128

    def check(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"index={self.kind!r}; expected one of {', '.join(KINDS)}")
        for name in ("cells", "probe", "links", "search_depth"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"index option {name}={value!r}; expected a whole number >= 1")


def build_index(vectors: np.ndarray, options: IndexOptions | None = None) -> Any:
    """A faiss inner-product index over `vectors` [n, dim] (float32), trained and filled."""
    faiss = require_faiss()
    options = options or IndexOptions()
    options.check()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if options.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, options.links, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = options.search_depth
        index.add(vectors)
        return index
    cells = options.cells or max(1, min(n // 39, int(4 * math.sqrt(n))))  # faiss wants >= 39 points per cell
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, cells, faiss.METRIC_INNER_PRODUCT)
    sample = vectors if n <= 64 * cells else vectors[np.random.default_rng(0).choice(n, 64 * cells, replace=False)]
    index.train(sample)
    index.add(vectors)
    index.nprobe = min(cells, options.probe or max(8, cells // 512))
    return index


@dataclass
class IndexReport:
    """How an index compares with exact search on the same queries."""

    kind: str
    items: int
    dim: int
    k: int
    queries: int
    recall: float
    index_qps: float
    exact_qps: float
    speedup: float
    build_seconds: float
    index_bytes: int
    parameters: dict[str, Any]


def measure_index(
    index: Any, vectors: np.ndarray, queries: np.ndarray, k: int = 10, build_seconds: float = 0.0, kind: str = ""
) -> IndexReport:
    """recall@k of `index` against exact inner-product search over `vectors`, and both throughputs, on `queries`
    searched as one batch (how a service answering many users at once calls it)."""
    faiss = require_faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    start = time.perf_counter()
    _, truth = exact.search(queries, k)
    exact_seconds = time.perf_counter() - start
    start = time.perf_counter()
    _, found = index.search(queries, k)
    index_seconds = time.perf_counter() - start
    hits = sum(len(set(t[t >= 0]) & set(f[f >= 0])) for t, f in zip(truth, found, strict=True))
    exact_qps, index_qps = len(queries) / exact_seconds, len(queries) / index_seconds
    return IndexReport(
        kind=kind or type(index).__name__,
        items=int(vectors.shape[0]),
        dim=int(vectors.shape[1]),
        k=k,
        queries=len(queries),
        recall=hits / (k * len(queries)),
        index_qps=index_qps,
        exact_qps=exact_qps,
        speedup=index_qps / exact_qps,
        build_seconds=build_seconds,
        index_bytes=len(faiss.serialize_index(index)),
        parameters=_parameters(index),
    )


def _parameters(index: Any) -> dict[str, Any]:
    if hasattr(index, "nprobe"):
        return {"cells": int(index.nlist), "probe": int(index.nprobe)}
    if hasattr(index, "hnsw"):
        return {"links": int(index.hnsw.nb_neighbors(1)), "search_depth": int(index.hnsw.efSearch)}
    return {}


def build_and_measure(
    vectors: np.ndarray,
    queries: np.ndarray,
    options: IndexOptions | None = None,
    k: int = 10,
    target_recall: float | None = 0.95,
) -> tuple[Any, IndexReport]:
    """`build_index` timed, then `measure_index` on `queries`.

    An ivf index whose `probe` was left to the default is first tuned: with `target_recall`, the cells scanned per
    query double until recall@k on the first half of the queries reaches it (or every cell is scanned), and the
    report is measured on the other half, which the tuning never saw. Real model vectors (a maximum-inner-product
    search with item biases) need more cells than clustered synthetic ones; the recall says how many it took."""
    options = options or IndexOptions()
    start = time.perf_counter()
    index = build_index(vectors, options)
    build_seconds = time.perf_counter() - start
    if options.kind == "ivf" and options.probe is None and target_recall is not None and len(queries) >= 2:
        tune, queries = queries[: len(queries) // 2], queries[len(queries) // 2 :]
        while index.nprobe < index.nlist and measure_index(index, vectors, tune, k).recall < target_recall:
            index.nprobe = min(index.nlist, 2 * index.nprobe)
    return index, measure_index(index, vectors, queries, k, build_seconds, options.kind)


def write_index(index: Any, report: IndexReport, folder: Path) -> None:
    """`index.faiss` (faiss's own format: `faiss.read_index`) and `index.json` (the report) into `folder`."""
    faiss = require_faiss()
    with atomic_path(folder / "index.faiss") as tmp:
        faiss.write_index(index, str(tmp))
    with atomic_path(folder / "index.json") as tmp:
        tmp.write_text(json.dumps(asdict(report), indent=1) + "\n")
