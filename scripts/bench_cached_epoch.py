"""One rating-task training epoch with cached item embeddings (lmrec) against re-encoding item text every batch.

What is measured
    Wall time per training batch, and per epoch, of the default rating model (text item tower: frozen
    all-MiniLM-L6-v2 vector -> learned linear projection to 64 dims; id user tower; dot head with biases; AdamW
    lr 0.003, weight decay 0.05; batch 1024; MSE on normalised ratings, i.e. `RatingTask.training_loss`) trained
    two ways on the same batches from the same initial weights:

    cached  lmrec's way: every item text is encoded once, up front, into an on-disk cache
            (`lmrec.encoders.embedding_cache.load_or_encode`); training only indexes that matrix. Timed over the
            whole epoch. The one-off encoding pass is not part of the epoch (see bench_encode.py for its cost).
    naive   the text of the item of every row of every batch is tokenized and run through the frozen MiniLM
            (under no_grad), then projected. An epoch of that takes tens of minutes on a small CPU, so only the
            first `--naive-batches` batches are timed and the full-epoch time is EXTRAPOLATED as
            mean time per batch x number of batches in the epoch.

    Both use a plain PyTorch loop (fetch batch, loss, backward, AdamW step) with lmrec's towers, head and task, so
    neither pays for Lightning. The speed-up is naive / cached mean time per batch. As a check that the two paths
    compute the same thing, the losses of the naive batches are compared with the cached run's losses on the same
    batches.

Why
    Caching frozen text embeddings is the design decision that makes text-based models trainable on a laptop;
    this puts a number on it.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from benchutil import machine_info, write_json
from torch import nn

REPO = Path(__file__).resolve().parents[1]
ENCODER_CFG = {
    "name_or_path": "sentence-transformers/all-MiniLM-L6-v2",
    "revision": None,
    "pooling": "mean",
    "max_length": 128,
    "normalize": True,
    "trust_remote_code": False,
}


class NaiveTextItemTower(nn.Module):
    """The no-cache baseline: tokenize and encode the items' texts on every call, then project."""

    def __init__(self, encoder: nn.Module, texts: list[str], dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder.requires_grad_(False)
        self.texts = texts
        self.projection = nn.Linear(encoder.dim, dim)

    def train(self, mode: bool = True) -> NaiveTextItemTower:
        super().train(mode)
        self.encoder.eval()  # frozen: no dropout, as in the one-off encoding pass
        return self

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        batch_texts = [self.texts[i] for i in items.tolist()]
        tokens = self.encoder.tokenizer(
            batch_texts, padding=True, truncation=True, max_length=self.encoder.max_length, return_tensors="pt"
        )
        with torch.no_grad():
            vectors = self.encoder(tokens["input_ids"], tokens["attention_mask"])
        return self.projection(vectors)


class PairScorer(nn.Module):
    """The part of lmrec's RecommenderModule that `RatingTask.training_loss` uses: `score_pairs`."""

    def __init__(self, item_tower: nn.Module, user_tower: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.item_tower, self.user_tower, self.head = item_tower, user_tower, head

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.head(self.user_tower.embedding(users), self.item_tower(items), users, items)


def run_batches(model: PairScorer, task, loader, seed: int, limit: int | None, lr: float, wd: float, label: str):
    """Train on the loader's batches (shuffled from `seed`), timing each batch; returns (seconds, losses, rows)."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=wd)
    torch.manual_seed(seed)  # the sampler draws its permutation from the global generator: same order for both
    seconds: list[float] = []
    losses: list[float] = []
    rows: list[int] = []
    iterator = iter(loader)
    while limit is None or len(seconds) < limit:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            break
        loss = task.training_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
        rows.append(len(batch["users"]))
        if limit is not None:
            print(f"  {label} batch {len(seconds)}/{limit}: {seconds[-1]:.2f} s", file=sys.stderr)
    return seconds, losses, rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_cache = os.environ.get("LMREC_CACHE_DIR", str(REPO / ".cache" / "lmrec"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO / "data" / "ml-latest-small"), help="MovieLens folder")
    parser.add_argument("--cache-dir", default=default_cache, help=f"embedding cache folder (default {default_cache})")
    parser.add_argument("--naive-batches", type=int, default=3, help="batches timed on the naive path (default 3)")
    parser.add_argument("--batch-size", type=int, default=1024, help="training batch size (default 1024, as lmrec)")
    parser.add_argument("--dim", type=int, default=64, help="model width (default 64, as lmrec)")
    parser.add_argument("--seed", type=int, default=42, help="split, init and shuffle seed (default 42)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from lmrec.data.datamodule import RecDataModule
    from lmrec.data.sources.movielens import MovieLensLatest
    from lmrec.encoders.embedding_cache import load_or_encode
    from lmrec.encoders.text_encoder import TextEncoder
    from lmrec.encoders.text_sources import FrozenTextTable
    from lmrec.model.heads import DotHead
    from lmrec.model.item_towers import TextItemTower
    from lmrec.model.user_towers import IdUserTower
    from lmrec.tasks.rating import RatingTask

    torch.set_num_threads(args.threads)
    lr, wd = 0.003, 0.05
    source = MovieLensLatest(args.data_root)
    dm = RecDataModule(source, RatingTask(source.rating_scale), seed=args.seed, batch_size=args.batch_size)
    dm.prepare()
    texts = dm.item_texts

    start = time.perf_counter()
    embeddings, cache_hit = load_or_encode(ENCODER_CFG, texts, dm.template_id, Path(args.cache_dir), batch_size=128)
    fill_seconds = None if cache_hit else time.perf_counter() - start
    encoder = TextEncoder(**ENCODER_CFG)

    torch.manual_seed(args.seed)
    cached = PairScorer(
        TextItemTower(FrozenTextTable(embeddings), args.dim),
        IdUserTower(dm.num_users, args.dim),
        DotHead(dm.num_users, dm.num_items),
    )
    naive = PairScorer(
        NaiveTextItemTower(encoder, texts, args.dim), copy.deepcopy(cached.user_tower), copy.deepcopy(cached.head)
    )
    naive.item_tower.projection.load_state_dict(cached.item_tower.projection.state_dict())
    task = dm.task
    loader = dm.train_dataloader()

    # Untimed warm-up of both code paths on throwaway copies (first-call allocations, thread pools).
    warm = {"users": torch.arange(64) % dm.num_users, "items": torch.arange(64), "ratings": torch.full((64,), 3.0)}
    for model in (cached, naive):
        task.training_loss(copy.deepcopy(model), warm).backward()

    cached_s, cached_loss, cached_rows = run_batches(cached, task, loader, args.seed, None, lr, wd, "cached")
    naive_s, naive_loss, naive_rows = run_batches(naive, task, loader, args.seed, args.naive_batches, lr, wd, "naive")
    n_batches, n_rows = len(cached_s), sum(cached_rows)
    k = len(naive_s)
    loss_diff = max(abs(a - b) for a, b in zip(naive_loss, cached_loss[:k], strict=True))

    cached_mean = statistics.fmean(cached_s)
    naive_mean = statistics.fmean(naive_s)
    cached_epoch = sum(cached_s)
    naive_epoch = naive_mean * n_batches
    speedup = naive_mean / cached_mean

    print(
        f"\nRating task, one epoch = {n_batches} batches ({n_rows} training rows, batch {args.batch_size}), "
        f"{args.threads} torch threads"
    )
    print(f"{'path':<10}{'batches timed':>15}{'mean s/batch':>15}{'median s/batch':>16}{'epoch s':>12}  note")
    print(
        f"{'cached':<10}{n_batches:>15}{cached_mean:>15.4f}{statistics.median(cached_s):>16.4f}"
        f"{cached_epoch:>12.2f}  measured over the full epoch"
    )
    print(
        f"{'naive':<10}{k:>15}{naive_mean:>15.4f}{statistics.median(naive_s):>16.4f}"
        f"{naive_epoch:>12.1f}  EXTRAPOLATED: {k} timed batches x {n_batches}/{k}"
    )
    print(f"naive per-batch times (s): {', '.join(f'{s:.2f}' for s in naive_s)}")
    print(f"speed-up cached vs naive (mean s/batch): {speedup:.0f}x")
    print(f"loss agreement on the {k} shared batches: max |naive - cached| = {loss_diff:.2e}")
    if fill_seconds is not None:
        print(f"one-off cache fill (encode {len(texts)} item texts, not part of the epoch): {fill_seconds:.1f} s")
    else:
        print(f"one-off cache fill: not measured (embedding cache hit in {args.cache_dir}); see bench_encode.py")

    result = {
        "benchmark": "bench_cached_epoch",
        "epoch_batches": n_batches,
        "epoch_rows": n_rows,
        "batch_size": args.batch_size,
        "cached": {
            "batches_timed": n_batches,
            "seconds_per_batch": cached_s,
            "mean_s_per_batch": cached_mean,
            "epoch_s": cached_epoch,
            "epoch_is_extrapolated": False,
        },
        "naive": {
            "batches_timed": k,
            "seconds_per_batch": naive_s,
            "mean_s_per_batch": naive_mean,
            "epoch_s": naive_epoch,
            "epoch_is_extrapolated": True,
        },
        "speedup_mean_per_batch": speedup,
        "max_loss_diff_shared_batches": loss_diff,
        "cache_fill_s": fill_seconds,
        "machine": machine_info(args.threads),
    }
    result["loadavg_1min_at_start"] = load_start
    print(f"load average (1 min) at start / end: {load_start:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
