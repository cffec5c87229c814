"""Full-ranking evaluation speed: lmrec's metrics against the bare cost of the same blocks, and against RecBole 1.2.

What is measured
    One full-ranking TEST pass over every test user of a synthetic data set shaped like MovieLens-20M (138,493
    users x 26,744 items, ~20M interactions, long-tailed item popularity and user activity; see `make_interactions`),
    split 80/10/10 at random with lmrec's own `random_ratio_split`, scored by random 64-d user and item embeddings
    (a dot product, like a matrix-factorisation model).  Users are evaluated in blocks of `--block`.

    lmrec      `RankingTask.update_metrics` on each block, exactly as training/eval runs call it: score the block
               (`U[users] @ I.T`), then `RankingMetricAccumulator.update` = NDCG/Recall/HR/MRR/Precision @5,10,20
               and exact AUC.  "lmrec, inplace" is the same with `RankingMetricAccumulator(ks, inplace=True)`
               (the scores are a throwaway, so they are masked and sorted in place); "lmrec, no AUC" skips AUC.
    bare       what any full-ranking evaluation must do on the same blocks: the same matmul, the same masking of
               seen items (in place, no copy) and one `torch.topk(k=20)`; nothing else.  The headline ratio is
               lmrec / bare (target <= 2).
    RecBole    RecBole 1.2.1's own full-sort evaluation on the same interactions (written as its benchmark files
               train/valid/test, so the split is identical), the same embeddings loaded into its BPR model (whose
               `full_sort_predict` is the same dot product) and the same block size (`eval_batch_size = block *
               item_num`).  The loop is `Trainer.evaluate`'s body with a timer per stage, calling RecBole's own
               methods: the test DataLoader's collate (history and positive indices), `Trainer._full_sort_batch_eval`
               (`full_sort_predict`, `scores[:, 0] = -inf`, `scores[history_index] = -inf`),
               `Collector.eval_batch_collect` (`rec.topk`: topk + positive matrix; `rec.meanrank`: full descending
               sort + average ranks, for GAUC) and, once at the end, `Collector.get_data_struct` +
               `Evaluator.evaluate` for NDCG, Recall, Hit, MRR, Precision @[5, 10, 20] and GAUC.  With `--quick`
               the plain `Trainer.evaluate` is run too and must return the same numbers as the timed loop.

    Batch building (dense target/exclusion rows for lmrec, RecBole's collate) is timed separately from the metric
    computation, and RecBole's data preparation (`create_dataset` + `data_preparation`) is reported but not
    compared.  The metrics of both libraries are checked against each other on the same scores: the top-k
    metrics must agree to 1e-6; RecBole's GAUC weights each user's AUC by its number of test items (lmrec's `auc`
    is the plain mean over users), so it is compared with lmrec's per-user AUC weighted the same way, to 1e-4
    (RecBole sums midranks in float32).  Ties: RecBole's topk order among tied scores, like lmrec's, is whatever
    `torch.topk` returns, and both count AUC ties as 1/2; random continuous scores have no ties in practice.

How
    Timings are wall-clock sums over all blocks, each stage alternated block by block (bare, lmrec, lmrec
    inplace, ...) so drift in machine load hits all alike; torch uses `--threads` threads (default: all cores).
    `--quick` runs an ML-1M-shaped set (6,040 x 3,706, ~1M interactions).  `--no-recbole` skips RecBole;
    `--recbole-users N` stops RecBole after the blocks holding its first N test users (its full ML-20M pass takes
    ~12 minutes on 2 cores): its time is then compared per user, and the metrics over exactly the users it saw.
    `--micro` also times, on one block, the AUC alternatives the design rests on (see `run_micro`), and
    `--wait-idle LOAD` first waits for the 1-minute load average to drop below LOAD (on a shared machine).

    RecBole 1.2.1 predates numpy 2: its `Config` re-creates old numpy aliases from `np.float_`, `np.complex_`
    and `np.unicode_`, which numpy 2 removed, so those three are provided before it is imported (see
    `_numpy2_aliases`); nothing else of RecBole is changed.

Run from the repository root, after `pip install --no-deps recbole==1.2.1 texttable colorama` (RecBole's
remaining imports, pandas/scipy/tqdm/colorlog/tensorboard, are already lmrec dependencies)::

    python scripts/bench_eval.py --recbole-users 20480   # ML-20M shape; RecBole on the first 20 blocks
    python scripts/bench_eval.py --quick                 # ML-1M shape, RecBole on every test user
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from benchutil import machine_info, write_json

REPO = Path(__file__).resolve().parents[1]
KS = (5, 10, 20)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=138_493, help="users (default: ML-20M's 138,493)")
    parser.add_argument("--items", type=int, default=26_744, help="items (default: ML-20M's 26,744)")
    parser.add_argument("--interactions", type=int, default=20_000_263, help="target interactions (ML-20M)")
    parser.add_argument("--min-per-user", type=int, default=20, help="fewest interactions per user (ML: 20)")
    parser.add_argument("--dim", type=int, default=64, help="embedding size (default 64)")
    parser.add_argument("--block", type=int, default=1024, help="users per evaluation block (default 1024)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--quick", action="store_true", help="ML-1M shape: 6,040 users x 3,706 items, ~1M")
    parser.add_argument("--no-recbole", action="store_true", help="skip the RecBole comparison")
    parser.add_argument("--recbole-users", type=int, default=None, help="RecBole: only the first N test users")
    parser.add_argument("--micro", action="store_true", help="also time AUC alternatives on one block (see below)")
    parser.add_argument("--wait-idle", type=float, default=None, metavar="LOAD",
                        help="first wait (up to 30 min) until the 1-minute load average is below LOAD")  # fmt: skip
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.items, args.interactions = 6_040, 3_706, 1_000_209
    return args


# ----------------------------------------------------------------------------------------------------- data


def make_interactions(
    users: int, items: int, interactions: int, min_per_user: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs with MovieLens-like marginals.

    Item popularity is log-normal (sigma 2.6) with the head capped so that the most popular item has 0.34% of
    all interactions (Pulp Fiction's share of ML-20M): on ML-20M's shape the median item gets a few dozen
    interactions and about a quarter of the items fewer than ten (ML-20M: median 18).  User activity is
    `min_per_user` plus a log-normal excess (sigma 1.38, as ML-20M: mean 144, median 68), scaled to the requested
    total and capped at 35% of the catalogue (ML-20M's heaviest user: 9,254 of 26,744 items).  Each user's items
    are drawn by popularity, with replacement, duplicates dropped, and the shortfall drawn again (a few rounds):
    light users get exactly their count, the heaviest users end somewhat short, so the total is a little under
    the target.  Every item that was never drawn is given to one random user, so that both libraries see the
    same catalogue (RecBole only knows items that occur in its files).
    """
    rng = np.random.default_rng(seed)
    weights = np.exp(2.6 * rng.standard_normal(items))
    lo, hi = 0.0, float(weights.max())
    for _ in range(60):  # the cap c at which the largest share is 0.34%
        c = (lo + hi) / 2
        lo, hi = (lo, c) if c / np.minimum(weights, c).sum() > 0.0034 else (c, hi)
    weights = np.minimum(weights, lo)
    cdf = np.cumsum(weights / weights.sum())
    excess = rng.lognormal(0.0, 1.38, size=users)
    excess *= max(interactions - min_per_user * users, 0) / excess.sum()
    want = np.minimum(min_per_user + np.floor(excess).astype(np.int64), int(0.35 * items))
    keys = np.empty(0, dtype=np.int64)
    have = np.zeros(users, dtype=np.int64)
    for _ in range(6):  # never more draws than a user still needs, so no user overshoots
        need = want - have
        if need.sum() <= 0.002 * want.sum():
            break
        draw_users = np.repeat(np.arange(users, dtype=np.int64), need)
        draw_items = np.minimum(np.searchsorted(cdf, rng.random(len(draw_users))), items - 1)
        keys = np.sort(np.concatenate([keys, draw_users * items + draw_items]))
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # np.unique, minus its (slow) hashing
        have = np.bincount(keys // items, minlength=users)
    u, i = keys // items, keys % items
    missing = np.flatnonzero(np.bincount(i, minlength=items) == 0)
    if len(missing):
        u = np.concatenate([u, rng.integers(0, users, len(missing))])
        i = np.concatenate([i, missing])
    return u, i


def build_splits(u: np.ndarray, i: np.ndarray, users: int, items: int, seed: int):
    """lmrec's own objects: a random 80/10/10 split (`random_ratio_split`) wrapped as `InteractionSplits`."""
    import pandas as pd

    from lmrec.data.interactions import InteractionSplits
    from lmrec.data.processed import ProcessedData
    from lmrec.data.splits import random_ratio_split

    split = random_ratio_split(len(u), [8, 1, 1], seed)
    frame = pd.DataFrame(
        {"user_idx": u, "item_idx": i, "rating": np.ones(len(u), np.float32), "timestamp": 0, "split": split}
    )
    data = ProcessedData(
        interactions=frame,
        users=pd.DataFrame({"user_id": np.arange(users)}),
        items=pd.DataFrame({"item_id": np.arange(items), "text": ""}),
    )
    return InteractionSplits(data), split


# ----------------------------------------------------------------------------------------------------- lmrec


class DotModel:
    """The `Scorer` `RankingTask.update_metrics` needs: scores are user_emb[users] @ item_emb.T."""

    def __init__(self, user_emb, item_emb) -> None:
        self.user_emb, self.item_emb = user_emb, item_emb

    def score_all_items(self, users):
        return self.user_emb[users] @ self.item_emb.T


def run_lmrec(splits, user_emb, item_emb, block: int) -> dict:
    import torch

    from lmrec.tasks.metrics import RankingMetricAccumulator, ranking_metrics
    from lmrec.tasks.ranking import RankingTask

    task = RankingTask(ks=KS)
    dataset = task.eval_dataset(splits, "test")
    model = DotModel(user_emb, item_emb)
    wired = task.make_metrics()  # what training/eval runs use: RankingMetricAccumulator(ks)
    lean = RankingMetricAccumulator(KS, auc=False, inplace=True)
    seconds: dict[str, float] = defaultdict(float)
    per_user: dict[str, list] = defaultdict(list)  # from the inplace pass, to compare with RecBole on any subset

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        seconds[name] += time.perf_counter() - start
        return out

    def bare(batch):
        scores = model.score_all_items(batch["users"])
        scores.masked_fill_(batch["exclude"], -math.inf)
        return torch.topk(scores, max(KS), dim=1).indices

    def inplace_pass(batch):
        # What RankingMetricAccumulator(KS, inplace=True).update calls; per-user values kept for the weighted AUC.
        scores = model.score_all_items(batch["users"])
        return ranking_metrics(scores, batch["targets"], batch["exclude"], KS, inplace=True)

    stages = [
        ("matmul", lambda b: model.score_all_items(b["users"])),
        ("bare", bare),
        ("lmrec", lambda b: task.update_metrics(wired, model, b)),
        ("lmrec, inplace", inplace_pass),
        ("lmrec, no AUC", lambda b: lean.update(model.score_all_items(b["users"]), b["targets"], b["exclude"])),
    ]
    n_users = len(dataset)
    with torch.inference_mode():
        for index, start in enumerate(range(0, n_users, block)):
            batch = timed("build blocks", lambda s=start: dataset.__getitems__(list(range(s, min(n_users, s + block)))))
            shift = index % len(stages)  # rotate the order so that no stage always runs first
            for name, fn in stages[shift:] + stages[:shift]:
                out = timed(name, lambda fn=fn, batch=batch: fn(batch))
                if name == "lmrec, inplace":
                    per_user["user"].append(batch["users"])
                    per_user["n_targets"].append((batch["targets"] & ~batch["exclude"]).sum(1))
                    for key, value in out.items():
                        per_user[key].append(value.double())
    per_user_t = {k: torch.cat(v).numpy() for k, v in per_user.items()}
    metrics = {k: float(v) for k, v in wired["ranking"].compute().items()}
    direct = summarize(per_user_t, None)
    for k in metrics:  # the accumulator's means equal the means of the per-user values
        assert abs(metrics[k] - direct[k]) < 1e-6, (k, metrics[k], direct[k])
    return {
        "seconds": dict(seconds),
        "metrics": metrics,
        "per_user": per_user_t,
        "test_users": n_users,
        "blocks": math.ceil(n_users / block),
    }


def summarize(per_user: dict[str, np.ndarray], users: np.ndarray | None) -> dict[str, float]:
    """Means over non-NaN users (of `users` only, if given), plus AUC weighted by #targets as RecBole's GAUC."""
    keep = np.ones(len(per_user["user"]), bool) if users is None else np.isin(per_user["user"], users)
    out = {}
    for key, value in per_user.items():
        if key not in ("user", "n_targets"):
            v = value[keep]
            out[key] = float(np.nanmean(v))
    auc, weight = per_user["auc"][keep], per_user["n_targets"][keep].astype(np.float64)
    ok = ~np.isnan(auc)
    out["auc_weighted_by_targets"] = float((auc[ok] * weight[ok]).sum() / weight[ok].sum())
    return out


# ----------------------------------------------------------------------------------------------------- micro

#: The commit whose `ranking_metrics` (argsort-based AUC) is timed as "before" by `--micro`.
OLD_COMMIT = "9ded386"


def _old_ranking_metrics():
    """`ranking_metrics` as of OLD_COMMIT, loaded from git (None outside a checkout that has it)."""
    import subprocess
    import types

    src = subprocess.run(["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:src/lmrec/tasks/metrics.py"],
                         capture_output=True, text=True, check=False).stdout  # fmt: skip
    if not src:
        return None
    module = types.ModuleType("lmrec_old_metrics")
    exec(compile(src, f"{OLD_COMMIT}:metrics.py", "exec"), module.__dict__)
    return module.ranking_metrics


def run_micro(splits, user_emb, item_emb, block: int, repeats: int = 5) -> dict:
    """Per-block costs (median of `repeats`) on the first block of test users: what the AUC design rests on.

    * bare: mask in place + top-k(20) (the matmul is excluded here: scores are precomputed);
    * lmrec without / with AUC (inplace), and with AUC for several chunk sizes (`CHUNK_ELEMENTS`);
    * the argsort-based AUC of OLD_COMMIT (whole `ranking_metrics`);
    * "count per target": the cost of one target slot of the sort-free alternative, i.e. `#neg < t` and
      `#neg <= t` for one target per user with two compares and two uint8 accumulations over the block
      (the final masked row sum is not even counted); multiplied by the mean targets per user it is what
      that method would cost, and AUC-increment / per-slot cost is the crossover number of targets.
    """
    import statistics

    import torch

    import lmrec.tasks.metrics as metrics_module
    from lmrec.tasks.metrics import ranking_metrics
    from lmrec.tasks.ranking import RankingTask

    dataset = RankingTask(ks=KS).eval_dataset(splits, "test")
    batch = dataset.__getitems__(list(range(min(block, len(dataset)))))
    targets, exclude = batch["targets"], batch["exclude"]
    scores = user_emb[batch["users"]] @ item_emb.T
    mean_targets = float((targets & ~exclude).sum(1).double().mean())

    def median(fn, fresh: bool = True, n: int = repeats) -> float:
        times = []
        for _ in range(n):
            arg = scores.clone() if fresh else scores
            start = time.perf_counter()
            fn(arg)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def bare(s):
        torch.topk(s.masked_fill_(exclude, -math.inf), max(KS), dim=1)

    out = {"users": len(scores), "items": scores.shape[1], "mean_targets": mean_targets}
    out["bare"] = median(bare)
    out["lmrec, no AUC"] = median(lambda s: ranking_metrics(s, targets, exclude, KS, auc=False, inplace=True))
    out["lmrec"] = median(lambda s: ranking_metrics(s, targets, exclude, KS, inplace=True))
    out["lmrec, copy"] = median(lambda s: ranking_metrics(s, targets, exclude, KS), fresh=False)
    default_chunk = metrics_module.CHUNK_ELEMENTS
    for shift in (17, 19, 21, 23, 25):
        metrics_module.CHUNK_ELEMENTS = 1 << shift
        out[f"lmrec, chunk 2^{shift}"] = median(lambda s: ranking_metrics(s, targets, exclude, KS, inplace=True))
    metrics_module.CHUNK_ELEMENTS = default_chunk
    old = _old_ranking_metrics()
    if old is not None:
        out[f"argsort AUC ({OLD_COMMIT})"] = median(lambda s: old(s, targets, exclude, KS), fresh=False, n=3)
    neg_scores = scores.masked_fill(exclude | targets, math.nan)  # NaN compares False: only negatives count
    probe = scores.gather(1, targets.to(torch.uint8).argmax(1, keepdim=True))  # one target score per user
    acc = torch.zeros(scores.shape, dtype=torch.uint8)
    flags = torch.empty(scores.shape, dtype=torch.bool)

    def one_slot(_):
        for _ in range(8):
            acc.add_(torch.lt(neg_scores, probe, out=flags).view(torch.uint8))
            acc.add_(torch.le(neg_scores, probe, out=flags).view(torch.uint8))

    out["count per target"] = median(one_slot, fresh=False) / 8
    return out


def print_micro(m: dict) -> None:
    print(f"\n--micro: one block of {m['users']:,} users x {m['items']:,} items (scores precomputed), "
          f"mean targets per user {m['mean_targets']:.1f}; median ms per block")  # fmt: skip
    print("| what | ms | x bare |\n|---|---|---|")
    for key, value in m.items():
        if key not in ("users", "items", "mean_targets"):
            print(f"| {key} | {value * 1e3:.1f} | {value / m['bare']:.2f} |")
    increment = m["lmrec"] - m["lmrec, no AUC"]
    print(f"AUC increment (values-only sort) {increment * 1e3:.1f} ms = {increment / m['count per target']:.1f} "
          f"target slots of the counting method; it would cost {m['mean_targets']:.1f} slots = "
          f"{m['mean_targets'] * m['count per target'] * 1e3:.0f} ms here")  # fmt: skip


# ----------------------------------------------------------------------------------------------------- RecBole


def _numpy2_aliases() -> None:
    """RecBole 1.2.1's `Config.compatibility_settings` re-creates numpy<1.24 aliases from `np.float_`,
    `np.complex_` and `np.unicode_`, which numpy 2 removed; provide those three so it can run unchanged."""
    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, old):
            setattr(np, old, new)


def run_recbole(u, i, split, user_emb, item_emb, block: int, max_users: int | None, check: bool) -> dict:
    """RecBole's timed full-sort pass (see the module docstring) in a scratch folder, removed afterwards."""
    import shutil

    workdir = Path(tempfile.mkdtemp(prefix="bench_eval_recbole_"))
    try:
        return _recbole_pass(workdir, u, i, split, user_emb, item_emb, block, max_users, check)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _recbole_pass(workdir: Path, u, i, split, user_emb, item_emb, block: int, max_users: int | None, check: bool):
    import logging

    import pandas as pd
    import torch

    _numpy2_aliases()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import BPR
    from recbole.trainer import Trainer

    logging.getLogger().setLevel(logging.ERROR)
    (workdir / "synth").mkdir()
    for code, name in enumerate(("train", "valid", "test")):
        part = split == code
        pd.DataFrame({"user_id:token": u[part], "item_id:token": i[part]}).to_csv(
            workdir / "synth" / f"synth.{name}.inter", sep="\t", index=False
        )
    item_num_guess = int(i.max()) + 2
    config = Config(
        model="BPR",
        dataset="synth",
        config_dict={
            "data_path": str(workdir),
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]},
            "metrics": ["NDCG", "Recall", "Hit", "MRR", "Precision", "GAUC"],
            "topk": list(KS),
            "valid_metric": "NDCG@10",
            "embedding_size": user_emb.shape[1],
            "eval_batch_size": block * item_num_guess,
            "metric_decimal_place": 12,
            "use_gpu": False,
            "show_progress": False,
            "checkpoint_dir": str(workdir / "saved"),
            "seed": 0,
        },
    )
    start = time.perf_counter()
    dataset = create_dataset(config)
    _, _, test_data = data_preparation(config, dataset)
    prep_seconds = time.perf_counter() - start
    assert dataset.item_num == item_num_guess, "every item must occur in the files"

    model = BPR(config, dataset)
    with torch.no_grad():  # RecBole id -> our row; id 0 is RecBole's padding, masked to -inf anyway
        for emb, field, table in ((model.user_embedding, "user_id", user_emb), (model.item_embedding, "item_id",
                                                                                item_emb)):  # fmt: skip
            tokens = dataset.field2id_token[field]
            rows = torch.tensor([int(t) for t in tokens[1:]])
            emb.weight.zero_()
            emb.weight[1:] = table[rows]
    cwd = os.getcwd()
    os.chdir(workdir)  # Trainer writes log_tensorboard/ into the working directory
    try:
        trainer = Trainer(config, model)
    finally:
        os.chdir(cwd)
    model.eval()
    trainer.tot_item_num = test_data._dataset.item_num
    trainer.item_tensor = test_data._dataset.get_item_feature()
    seconds: dict[str, float] = defaultdict(float)
    users_done, done_ids = 0, []
    with torch.no_grad():
        loader = iter(test_data)
        while max_users is None or users_done < max_users:
            start = time.perf_counter()
            batched = next(loader, None)
            seconds["collate"] += time.perf_counter() - start
            if batched is None:
                break
            start = time.perf_counter()
            interaction, scores, positive_u, positive_i = trainer._full_sort_batch_eval(batched)
            seconds["score + mask"] += time.perf_counter() - start
            start = time.perf_counter()
            trainer.eval_collector.eval_batch_collect(scores, interaction, positive_u, positive_i)
            seconds["collect"] += time.perf_counter() - start
            users_done += len(interaction)
            done_ids.append(interaction["user_id"])
        start = time.perf_counter()
        trainer.eval_collector.model_collect(model)
        struct = trainer.eval_collector.get_data_struct()
        result = trainer.evaluator.evaluate(struct)
        seconds["evaluate"] += time.perf_counter() - start
    tokens = dataset.field2id_token["user_id"]
    lmrec_users = np.array([int(tokens[j]) for j in torch.cat(done_ids).tolist()], dtype=np.int64)
    out = {"seconds": dict(seconds), "metrics": {k: float(v) for k, v in result.items()}, "users": users_done,
           "lmrec_user_ids": lmrec_users, "data_preparation_s": prep_seconds,
           "item_num_with_padding": dataset.item_num}  # fmt: skip
    if (
        check and max_users is None
    ):  # the timed loop is Trainer.evaluate's body: the plain call must give the same numbers
        plain = trainer.evaluate(test_data, load_best_model=False)
        for k, v in plain.items():
            assert abs(float(v) - out["metrics"][k]) < 1e-9, (k, float(v), out["metrics"][k])
        out["checked_against_trainer_evaluate"] = True
    return out


# ----------------------------------------------------------------------------------------------------- main


def fmt_row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def wait_idle(limit: float, patience_s: float = 1800.0) -> None:
    """Block until the 1-minute load average is below `limit` (this is a 2-core VM shared with other work)."""
    deadline = time.monotonic() + patience_s
    while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
        print(f"waiting for load < {limit} (now {os.getloadavg()[0]:.2f})", flush=True)
        time.sleep(30)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.wait_idle is not None:
        wait_idle(args.wait_idle)
    load_start = os.getloadavg()[0]
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    u, i = make_interactions(args.users, args.items, args.interactions, args.min_per_user, args.seed)
    splits, split = build_splits(u, i, args.users, args.items, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    user_emb = torch.randn(args.users, args.dim, generator=gen) / math.sqrt(args.dim)
    item_emb = torch.randn(args.items, args.dim, generator=gen)
    per_user = np.bincount(u, minlength=args.users)
    print(
        f"data: {args.users:,} users x {args.items:,} items, {len(u):,} interactions "
        f"(per user: mean {per_user.mean():.0f}, median {np.median(per_user):.0f}, max {per_user.max():,}; "
        f"top item {np.bincount(i).max():,}), split 80/10/10: {np.bincount(split).tolist()}; "
        f"built in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    micro = run_micro(splits, user_emb, item_emb, args.block) if args.micro else None
    lm = run_lmrec(splits, user_emb, item_emb, args.block)
    s = lm["seconds"]
    print(f"lmrec: {lm['test_users']:,} test users in {lm['blocks']} blocks of {args.block}", flush=True)
    rb = None
    if not args.no_recbole:
        rb = run_recbole(u, i, split, user_emb, item_emb, args.block, args.recbole_users, check=args.quick)
    widths = [44, 10, 10]
    print()
    print(fmt_row(["stage (all test users)", "seconds", "x bare"], widths))
    print(fmt_row(["-" * w for w in widths], widths))
    bare = s["bare"]
    labels = {"bare": "bare: matmul + mask + top-k", "lmrec": "lmrec: matmul + all metrics (as wired)"}
    for name in ("matmul", "bare", "lmrec", "lmrec, inplace", "lmrec, no AUC"):
        label = labels.get(name, name)
        print(fmt_row([label, f"{s[name]:.2f}", f"{s[name] / bare:.2f}"], widths))
    print(fmt_row(["lmrec: build blocks (dense rows, not above)", f"{s['build blocks']:.2f}", ""], widths))
    result = {"args": vars(args), "interactions": len(u), "machine": None}
    result["lmrec"] = {k: v for k, v in lm.items() if k != "per_user"}
    if rb is not None:
        scale = rb["users"] / lm["test_users"]  # RecBole may have run on a prefix of the users
        r = rb["seconds"]
        rb_eval = r["score + mask"] + r["collect"] + r["evaluate"]
        lm_eval = s["lmrec"] * scale
        print(fmt_row([f"RecBole ({rb['users']:,} users): collate", f"{r['collate']:.2f}", ""], widths))
        for name in ("score + mask", "collect", "evaluate"):
            print(fmt_row([f"RecBole: {name}", f"{r[name]:.2f}", f"{r[name] / (bare * scale):.2f}"], widths))
        print(fmt_row(["RecBole: score + mask + collect + evaluate", f"{rb_eval:.2f}",
                       f"{rb_eval / (bare * scale):.2f}"], widths))  # fmt: skip
        print(fmt_row(["RecBole: data preparation (not compared)", f"{rb['data_preparation_s']:.1f}", ""], widths))
        print()
        print(f"lmrec / bare = {s['lmrec'] / bare:.2f} (inplace {s['lmrec, inplace'] / bare:.2f})")
        print(f"RecBole / lmrec, metric computation incl. scoring = {rb_eval / lm_eval:.1f}x "
              f"(inplace {rb_eval / (s['lmrec, inplace'] * scale):.1f}x)")  # fmt: skip
        with_building = (rb_eval + r["collate"]) / (lm_eval + s["build blocks"] * scale)
        print(f"RecBole / lmrec, incl. batch building = {with_building:.1f}x")
        result["recbole"] = {k: v for k, v in rb.items() if k != "lmrec_user_ids"}
        compare(summarize(lm["per_user"], rb["lmrec_user_ids"]), rb)
    else:
        print(f"\nlmrec / bare = {s['lmrec'] / bare:.2f} (inplace {s['lmrec, inplace'] / bare:.2f})")
    if micro is not None:
        print_micro(micro)
        result["micro"] = micro
    result["machine"] = machine_info(args.threads) | {"loadavg_1min_at_start": load_start}
    print(f"\nload average (1 min) at start {load_start:.2f}, at end {os.getloadavg()[0]:.2f}")
    write_json(args.json_path, result)
    return 0


def compare(lm: dict, rb: dict) -> None:
    """Print lmrec's and RecBole's means over the same users side by side; fail if top-k metrics differ by more
    than 1e-6 or AUC (weighted as GAUC) by more than 1e-4."""
    print(f"\nmetrics over the {rb['users']:,} users RecBole evaluated, on the same scores")
    print("| metric | lmrec | RecBole | |diff| |\n|---|---|---|---|")
    worst = 0.0
    for k in KS:
        for ours, theirs in (("ndcg", "ndcg"), ("recall", "recall"), ("hr", "hit"), ("mrr", "mrr"),
                             ("precision", "precision")):  # fmt: skip
            a, b = lm[f"{ours}@{k}"], rb["metrics"][f"{theirs}@{k}"]
            worst = max(worst, abs(a - b))
            print(f"| {ours}@{k} | {a:.6f} | {b:.6f} | {abs(a - b):.1e} |")
    a, b = lm["auc_weighted_by_targets"], rb["metrics"]["gauc"]
    print(f"| auc weighted by #targets vs gauc | {a:.6f} | {b:.6f} | {abs(a - b):.1e} |")
    print(f"| auc (lmrec: plain mean over users) | {lm['auc']:.6f} | | |")
    ok = worst <= 1e-6 and abs(a - b) <= 1e-4
    print(f"\nmetrics agree: {ok} (largest top-k difference {worst:.1e})")
    if not ok:
        raise SystemExit("lmrec and RecBole disagree")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    raise SystemExit(main())
