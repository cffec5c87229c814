"""One rating-task training epoch with cached item embeddings (lmrec) against re-encoding item text every batch.

What is measured
    Wall time per training batch, and per epoch, of the default rating model as `lmrec-train` builds it (text item
    tower: frozen all-MiniLM-L6-v2 vector -> learned projection to `model.dim`; id user tower; dot head with
    biases; the configured AdamW; batch 1024; the rating task's loss), trained two ways on the same batches from
    the same initial weights, in a plain loop (batch, loss, backward, optimizer step), so neither pays for Lightning:

    cached  lmrec's way: the catalogue is encoded once into the on-disk cache and training only indexes that
            matrix. Timed over the whole epoch. The one-off encoding pass is not part of the epoch; it is
            reported when this run filled the cache (see the `encode` benchmark for its speed).
    naive   a copy of the same model whose text source tokenizes and runs the frozen encoder (under no_grad) on
            the item text of every row of every batch, then projects it. An epoch of that takes many minutes on a
            small CPU, so only the first `--naive-batches` batches are timed and the epoch is EXTRAPOLATED as mean
            time per batch x batches in the epoch.

    The speed-up is naive / cached mean time per batch. As a check that the two paths compute the same model, the
    losses of the naive batches are compared with the cached run's losses on the same batches.

Why
    Caching frozen text embeddings is the design decision that makes text-based models trainable on a laptop;
    this puts a number on it. Quick: a tiny random BERT on the first 20 users' data, one naive batch.
"""

from __future__ import annotations

import argparse
import copy
import os
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, compose, encoder_kwargs, prepared, tiny_encoder_overrides
from lmrec.bench.registry import Benchmark, Context, Result, register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run cached_epoch`."""
    parser.add_argument("--naive-batches", type=int, default=3, help="batches timed on the naive path (3)")
    parser.add_argument("--batch-size", type=int, default=1024, help="training batch size (1024, as lmrec)")
    parser.add_argument("--seed", type=int, default=42, help="split, init and shuffle seed (42, as lmrec)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("overrides", nargs="*", help="more lmrec-train overrides (e.g. model.dim=128)")


def naive_text_source(encoder: Any, texts: list[str]) -> Any:
    """A text source that encodes the given items' texts on every call (the no-cache baseline)."""
    import torch
    from torch import nn

    class NaiveText(nn.Module):
        """The text source of the naive path (see `naive_text_source`)."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder.requires_grad_(False)
            self.dim = encoder.dim

        def train(self, mode: bool = True) -> NaiveText:
            """Train mode for the projection; the frozen encoder stays in eval mode (no dropout)."""
            super().train(mode)
            self.encoder.eval()  # frozen: no dropout, as in the one-off encoding pass
            return self

        def forward(self, items: torch.Tensor) -> torch.Tensor:
            """The encoder on the given items' texts, tokenized now."""
            if items.numel() == 0:  # e.g. the history items an id user tower looks up: none
                return torch.empty(0, self.dim)
            batch = [texts[i] for i in items.tolist()]
            tokens = encoder.tokenizer(
                batch, padding=True, truncation=True, max_length=encoder.max_length, return_tensors="pt"
            )
            with torch.no_grad():
                return encoder(tokens["input_ids"], tokens["attention_mask"])

    return NaiveText()


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    import torch

    from lmrec.bench.configured import build_model
    from lmrec.bench.models import configured_optimizer, train_batches, use_per_row
    from lmrec.bench.timing import Timing, extrapolate
    from lmrec.cli.components import seed_run
    from lmrec.encoders.text_encoder import TextEncoder

    overrides = ["task=rating", f"data.batch_size={args.batch_size}", f"seed={args.seed}", *args.overrides]
    if ctx.quick:
        overrides = [*QUICK_DATA, *tiny_encoder_overrides(ctx.workdir), *overrides]
    naive_batches = 1 if ctx.quick else args.naive_batches
    cfg = compose(overrides, ctx.workdir, ctx.cache_dir)
    seed_run(cfg)
    task, datamodule = prepared(cfg)
    torch.set_num_threads(1 if ctx.quick else args.threads)
    cached = build_model(cfg, datamodule, task)
    encoding = dict(getattr(cached.item_tower.text, "encoding", {}))
    options, _ = encoder_kwargs(cfg.model.encoder)
    naive = use_per_row(copy.deepcopy(cached))
    naive.item_tower.text = naive_text_source(TextEncoder(**options), datamodule.item_texts)
    warm = {
        "users": torch.arange(64) % datamodule.num_users,
        "items": torch.arange(64) % datamodule.num_items,
        "ratings": torch.full((64,), 3.0),
    }
    for model in (cached, naive):  # untimed, on throwaway copies: first-call allocations, thread pools
        task.training_loss(copy.deepcopy(model), warm).backward()
    runs = {}
    for name, model, limit in (("cached", cached, None), ("naive", naive, naive_batches)):
        torch.manual_seed(args.seed)  # the loader draws its order from the global generator: the same for both
        runs[name] = train_batches(model, datamodule.train_dataloader(), configured_optimizer(model), limit, ctx.log)
    n_batches, n_rows = len(runs["cached"]["seconds"]), sum(runs["cached"]["rows"])
    k = len(runs["naive"]["seconds"])
    figures: dict[str, Any] = {"epoch_batches": n_batches, "epoch_rows": n_rows}
    for name, timed in runs.items():
        seconds = Timing(tuple(timed["seconds"]))
        figures[name] = {
            "batches_timed": len(seconds.seconds),
            "mean_s_per_batch": seconds.mean,
            **{key: v for key, v in seconds.summary().items() if key != "runs_s"},
            "runs_s": list(seconds.seconds) if name == "naive" else [],
        }
    figures["cached"]["epoch_s"] = sum(runs["cached"]["seconds"])
    figures["naive"]["epoch_s"] = extrapolate(runs["naive"]["seconds"], n_batches)
    figures["speedup_mean_per_batch"] = figures["naive"]["mean_s_per_batch"] / figures["cached"]["mean_s_per_batch"]
    pairs = zip(runs["naive"]["losses"], runs["cached"]["losses"][:k], strict=True)
    figures["max_loss_diff"] = max(abs(a - b) for a, b in pairs)
    if encoding and not encoding.get("cache_hit"):
        figures["cache_fill_s"] = float(encoding["encode_seconds"])
    return {
        "figures": figures,
        "checks": {"same_losses": figures["max_loss_diff"] < 1e-4},
        "facts": {"naive_epoch_extrapolated_from_batches": k, "embedding_cache_hit": bool(encoding.get("cache_hit"))},
        "options": {
            "batch_size": args.batch_size,
            "seed": args.seed,
            "naive_batches": naive_batches,
            "overrides": list(args.overrides),
        },
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        f = r["figures"]
        for name in ("cached", "naive"):
            path = f.get(name, {})
            epoch = path.get("epoch_s")
            shown = (
                "—"
                if epoch is None
                else tables.cell(epoch, ".2f" if name == "cached" else ".1f")
                + (" (measured)" if name == "cached" else " (**extrapolated**)")
            )
            timed = path.get("batches_timed")
            timed_cell = f"{timed} (full epoch)" if name == "cached" and timed is not None else tables.cell(timed)
            rows.append(
                [
                    tables.run_cell(r) if name == "cached" else "",
                    name,
                    timed_cell,
                    tables.cell(path.get("mean_s_per_batch"), ".4f"),
                    tables.cell(path.get("median_s"), ".4f"),
                    shown,
                ]
            )
        if f.get("speedup_mean_per_batch") is not None:
            rows.append(
                [
                    "",
                    "**speed-up** (naive / cached, per batch)",
                    "",
                    f"**{tables.cell(f['speedup_mean_per_batch'], ',.0f')}×**",
                    "",
                    "",
                ]
            )
    return tables.table(["run", "path", "batches timed", "mean s/batch", "median s/batch", "epoch s"], rows, "llrrrr")


register(
    Benchmark(
        name="cached_epoch",
        description="A rating training epoch on cached item embeddings vs re-encoding every row's text (extrapolated)",
        run=run,
        add_arguments=add_arguments,
        table=table,
        module=__name__,
    )
)
