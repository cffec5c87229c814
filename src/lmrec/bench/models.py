"""Training-loop pieces the model benchmarks share: the configured optimizer, a timed plain loop, per-row encoding.

Benchmarks that time training steps run a plain loop (batch, the task's loss, backward, optimizer step) over the
model lmrec builds, so the figures are the model's and not Lightning's bookkeeping; the optimizer is the one the
config names (`model.optimizer`, with a tuning mode's encoder parameter groups), as in `lmrec-train`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any


def configured_optimizer(model: Any) -> Any:
    """The optimizer of the model's config (`model.optimizer`) over its parameter groups; no schedule (a few
    timed steps do not need one)."""
    return model.optimization.optimizer(params=model.parameter_groups())


def per_row_item_vectors(model: Any, *groups: Any) -> list:
    """The item tower on every slot, duplicates included: the baseline lmrec's distinct-item encoding
    (`RecommenderModule.item_vectors`) is measured against. Empty groups (an id user tower looks up no history
    items) get empty vectors without running the tower."""
    import torch

    vectors = [model.item_tower(group.reshape(-1)) if group.numel() else None for group in groups]
    dim = next(v.shape[-1] for v in vectors if v is not None)
    return [
        (v if v is not None else torch.empty(0, dim, device=group.device)).reshape(*group.shape, dim)
        for v, group in zip(vectors, groups, strict=True)
    ]


def use_per_row(model: Any) -> Any:
    """`model` encoding every slot of a batch on its own (patched on this instance only)."""
    model.item_vectors = lambda *groups: per_row_item_vectors(model, *groups)
    return model


def timed_step(model: Any, batch: dict, optimizer: Any) -> tuple[float, float]:
    """(seconds, loss) of one training step: the task's loss, backward, optimizer step."""
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = model.task.training_loss(model, batch)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start, float(loss.detach())


def train_batches(
    model: Any,
    batches: Iterable[dict],
    optimizer: Any,
    limit: int | None = None,
    report: Callable[[str], None] | None = None,
) -> dict[str, list]:
    """Train on `batches` (the first `limit` of them), timing each step including fetching its batch; the seconds,
    losses and rows of every step."""
    model.train()
    out: dict[str, list] = {"seconds": [], "losses": [], "rows": []}
    iterator = iter(batches)
    while limit is None or len(out["seconds"]) < limit:
        start = time.perf_counter()
        batch = next(iterator, None)
        if batch is None:
            break
        fetched = time.perf_counter() - start
        seconds, loss = timed_step(model, batch, optimizer)
        out["seconds"].append(fetched + seconds)
        out["losses"].append(loss)
        out["rows"].append(len(batch["users"]))
        if report is not None and limit is not None:
            report(f"batch {len(out['seconds'])}/{limit}: {out['seconds'][-1]:.3f} s")
    return out


def first_batch(datamodule: Any, seed: int = 0) -> dict:
    """The first training batch of the datamodule's (shuffled) loader, the same for every model built from it."""
    import torch

    torch.manual_seed(seed)
    return next(iter(datamodule.train_dataloader()))
