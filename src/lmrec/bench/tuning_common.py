"""What the three encoder-tuning benchmarks share: a tuned model and a training batch as lmrec-train builds them,
and the item slots of a step.

All three run on the bundled data with the packaged all-MiniLM-L6-v2 (quick runs: a tiny random 6-layer BERT on the
first 8 users, so partial tuning can still freeze 5 of 6 layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lmrec.bench.configured import build_model, compose, prepared, tiny_encoder_overrides
from lmrec.bench.registry import Context


def build(overrides: Sequence[str], ctx: Context, max_length: int = 32, batch_size: int = 1024) -> tuple[Any, dict]:
    """A model in train mode and its first training batch (batch size `batch_size`, texts cut at `max_length`)."""
    from lmrec.bench.models import first_batch
    from lmrec.cli.components import seed_run

    extra = ["data.max_users=8", *tiny_encoder_overrides(ctx.workdir, layers=6)] if ctx.quick else []
    cfg = compose(
        [*extra, f"model.encoder.max_length={max_length}", f"data.batch_size={batch_size}", *overrides],
        ctx.workdir,
        ctx.cache_dir,
    )
    seed_run(cfg)
    task, datamodule = prepared(cfg)
    model = build_model(cfg, datamodule, task)
    model.train()
    return model, first_batch(datamodule)


def slots(model: Any, batch: dict, distinct_users: bool) -> Any:
    """Every item slot of a step: rows, negatives and, with a history user tower, the history entries, either of
    every row (a per-row implementation) or of each distinct user of the batch once (one that shares users)."""
    import torch

    items = [batch["items"].reshape(-1)]
    if "negatives" in batch:
        items.append(batch["negatives"].reshape(-1))
    if distinct_users:
        items.append(model.user_tower.lookup(batch["users"]).items.reshape(-1))  # each distinct user's history once
    else:  # every row's history: look each row's user up on its own
        items += [model.user_tower.lookup(user.reshape(1)).items.reshape(-1) for user in batch["users"]]
    return torch.cat(items)


def seconds_per_chunk(model: Any, flat: Any, chunk: int, chunks: int) -> float:
    """Mean time of forward + backward of the item tower over `chunks` chunks of `chunk` slots of `flat`."""
    import time

    import torch

    times = []
    for start in range(0, min(chunks * chunk, len(flat)), chunk):
        items = flat[start : start + chunk]
        began = time.perf_counter()
        vectors = model.item_tower(items)
        vectors.backward(torch.ones_like(vectors) / vectors.numel())
        times.append(time.perf_counter() - began)
    model.zero_grad(set_to_none=True)
    return sum(times) / len(times)
