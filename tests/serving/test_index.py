"""The faiss index: its recall against exact search is measured, not assumed."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.errors import ConfigError

faiss = pytest.importorskip("faiss")

from lmrec.serving.index import IndexOptions, build_and_measure, build_index, measure_index  # noqa: E402


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim)).astype(np.float32)
    return centres[rng.integers(0, 20, n)] + rng.standard_normal((n, dim)).astype(np.float32)


def test_recall_is_counted_against_exact_search():
    vectors, queries = clustered(4000, 16, 0), clustered(200, 16, 1)
    index, report = build_and_measure(vectors, queries, IndexOptions("ivf", cells=40, probe=40))
    assert report.recall == 1.0  # every cell scanned: the index is exact
    index.nprobe = 1
    partial = measure_index(index, vectors, queries, k=10)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    _, found = index.search(queries, 10)
    expected = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
    assert partial.recall == pytest.approx(expected) and partial.recall < 1.0
    assert partial.parameters == {"cells": 40, "probe": 1} and partial.index_bytes > vectors.nbytes


def test_hnsw_finds_the_nearest_items():
    vectors, queries = clustered(3000, 16, 2), clustered(100, 16, 3)
    _, report = build_and_measure(vectors, queries, IndexOptions("hnsw", links=16, search_depth=64))
    assert report.recall >= 0.9 and report.parameters["search_depth"] == 64


def test_the_cells_scanned_are_tuned_to_the_recall_target_on_queries_the_report_does_not_use():
    vectors, queries = clustered(4000, 16, 4), clustered(400, 16, 5)
    index, report = build_and_measure(vectors, queries, IndexOptions("ivf", cells=64), target_recall=0.99)
    assert report.queries == 200 and report.recall >= 0.9
    tuned = index.nprobe
    assert tuned == 64 or measure_index(index, vectors, queries[:200]).recall >= 0.99
    if tuned > 8:
        index.nprobe = tuned // 2
        assert measure_index(index, vectors, queries[:200]).recall < 0.99  # the half it tuned on: just enough


@pytest.mark.parametrize(
    ("options", "message"), [(IndexOptions("annoy"), "expected one of"), (IndexOptions(cells=0), ">= 1")]
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        build_index(clustered(100, 4, 0), options)
