"""A run's item and user vectors with the dataset's ids and titles, for a retrieval system outside lmrec.

`lmrec-export run=... embeddings=true` writes, into one folder (published whole or not at all):

- `items.parquet` (item_id, title, bias) and `item_vectors.npy` [items, dim] in the same row order;
- `users.parquet` (user_id, bias) and `user_vectors.npy` [users, dim] where the model has a vector per training user;
- `embeddings.json`: the model, the width, and how the vectors score (`score`): a dot-product head scores
  <u, i> + bias_i (+ bias_u), so appending bias_i to each item vector and 1 to each user vector makes the model's
  ranking a maximum-inner-product search; an MLP head does not score by a dot product (the vectors then find
  neighbours, not recommendations).

EASE, ItemKNN and popularity keep no item vectors (they score through an item-item matrix or a count); they are
refused with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from lmrec.atomic import publish_dir
from lmrec.errors import RequestError

if TYPE_CHECKING:
    from lmrec.serving.recommender import Recommender

#: Users whose vectors are computed per pass.
USER_CHUNK = 1024
#: Queries an index is measured with against exact search.
QUERIES = 2000


def item_vectors(rec: Recommender) -> np.ndarray:
    """Every item's vector in the model's scoring space [items, dim]."""
    baseline = getattr(rec.model, "baseline", None)
    if baseline is not None:
        factors = getattr(baseline, "item_factors", None)
        if factors is None:
            raise RequestError(
                f"model {type(baseline).__name__} has no item vectors: it scores through an item-item matrix or a "
                "count; export the vectors of a tower model or ALS"
            )
        return factors.detach().float().cpu().numpy()
    with torch.inference_mode():
        rec.prepare()
        return rec.model.all_item_vectors().detach().float().cpu().numpy()


@torch.inference_mode()
def user_vectors(rec: Recommender) -> np.ndarray | None:
    """Every training user's vector [users, dim], as the test evaluation reads them; None where the model has no
    vector per user (a fitted model other than ALS)."""
    baseline = getattr(rec.model, "baseline", None)
    if baseline is not None:
        factors = getattr(baseline, "user_factors", None)
        return None if factors is None else factors.detach().float().cpu().numpy()
    rec.prepare()
    item_vectors = rec.model.all_item_vectors()
    chunks = []
    for start in range(0, len(rec.users), USER_CHUNK):
        users = torch.arange(start, min(start + USER_CHUNK, len(rec.users)))
        inputs = rec.test_inputs(users)
        chunks.append(rec.model.user_vectors(users, inputs.get("sequences"), item_vectors).float().cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, item_vectors.shape[1]), dtype=np.float32)


def head_biases(rec: Recommender) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(item biases, user biases, how a score is computed) of the model's head."""
    head = getattr(rec.model, "head", None)
    if head is None:
        return None, None, "dot: <user vector, item vector> (ALS)"
    if not getattr(head, "linear_in_user", False):
        return None, None, f"{type(head).__name__}: not a dot product; the vectors find neighbours only"
    if not getattr(head, "biases", False):
        return None, None, "dot: <user vector, item vector>"
    item_bias = head.item_bias.weight[:, 0].detach().float().cpu().numpy() + float(head.global_bias.detach()[0])
    user_bias = head.user_bias.weight[:, 0].detach().float().cpu().numpy()
    return item_bias, user_bias, "dot: <user vector, item vector> + item bias (+ user bias, constant per user)"


def search_vectors(items: np.ndarray, users: np.ndarray | None, item_bias: np.ndarray | None):
    """(item rows, query rows) whose inner products rank items as the model does: the item bias appended to each
    item and a 1 to each user. Without users (neighbour search), the items query themselves."""
    if item_bias is None:
        return items, users if users is not None else items
    rows = np.hstack([items, item_bias[:, None]]).astype(np.float32)
    if users is None:
        return rows, np.hstack([items, np.zeros((len(items), 1), dtype=np.float32)])
    return rows, np.hstack([users, np.ones((len(users), 1), dtype=np.float32)])


def write_embeddings(rec: Recommender, out: Path, index: str | None = None) -> dict[str, Any]:
    """Write the folder described above to `out` (which must not hold files), with a faiss index of kind `index`
    (`lmrec.serving.index`) and its report when asked; returns the manifest."""
    items = item_vectors(rec)
    users = user_vectors(rec)
    item_bias, user_bias, score = head_biases(rec)
    manifest: dict[str, Any] = {
        "run": str(rec.loaded.folder),
        "checkpoint": rec.loaded.checkpoint.name,
        "model": rec.describe()["model"],
        "dim": int(items.shape[1]),
        "items": int(items.shape[0]),
        "users": 0 if users is None else int(users.shape[0]),
        "score": score,
    }
    with publish_dir(out) as tmp:
        table = pd.DataFrame({"item_id": rec.items, "title": rec.titles})
        if item_bias is not None:
            table["bias"] = item_bias
        table.to_parquet(tmp / "items.parquet", index=False)
        np.save(tmp / "item_vectors.npy", items)
        if users is not None:
            user_table = pd.DataFrame({"user_id": rec.users})
            if user_bias is not None:
                user_table["bias"] = user_bias
            user_table.to_parquet(tmp / "users.parquet", index=False)
            np.save(tmp / "user_vectors.npy", users)
        if index is not None:
            from lmrec.serving.index import IndexOptions, build_and_measure, write_index

            rows, queries = search_vectors(items, users, item_bias)
            sample = queries[np.random.default_rng(0).permutation(len(queries))[:QUERIES]]
            built, report = build_and_measure(rows, sample, IndexOptions(kind=index))
            write_index(built, report, tmp)
            manifest["index"] = {"file": "index.faiss", "recall@10": report.recall, "speedup": report.speedup}
        (tmp / "embeddings.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
