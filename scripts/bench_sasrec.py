"""lmrec's SASRec (`experiment=sasrec`) against RecBole 1.2.1's SASRec on one identical temporal leave-one-out split.

The split is lmrec's (`data.split.strategy=temporal_loo` on the bundled data). It is written as a RecBole atomic
`.inter` file whose timestamp column is each interaction's rank in lmrec's own order (time, then file row), so
RecBole's leave-one-out (`eval_args.split={LS: valid_and_test}`, `order: TO`) picks exactly lmrec's validation and
test items whatever its sort does with equal timestamps; the script checks that RecBole's test pairs equal
lmrec's before it trains. Both sides use RecBole's SASRec defaults (width 64, 2 layers, 2 heads, feed-forward 256,
dropout 0.5, max length 50, CE loss over the catalogue, Adam lr 0.001, early stopping on validation after 10
epochs without improvement; lmrec's dot head without biases, as RecBole's) and full ranking without masking the
input history (RecBole's sequential
evaluation does not mask; lmrec runs with `task.mask_history=false`). Reported: test NDCG@10 and Recall@10 per
seed and their means, and the mean seconds of one training epoch of each (timed inside the same process).

    pip install --no-deps recbole==1.2.1 texttable colorama      # RecBole's run-time imports, once
    python scripts/bench_sasrec.py --seeds 0 1 2 --json docs/results/sasrec.json

`--max-epochs N` caps both sides (RecBole's default is 300 with early stopping); `--only lmrec|recbole` runs one;
`--gpu` trains both on a CUDA GPU; `--jobs 3` runs the three seeds at once, each in its own process (quality
figures are unchanged; epoch times then include the sharing, so take speed from a `--jobs 1` run). On two CPU
cores a RecBole epoch takes about 230 s, so the converged 3-seed comparison is a GPU job
(`python scripts/bench_sasrec.py --gpu --jobs 3 --json docs/results/sasrec.json`); `--max-epochs 2` gives the
side-by-side epoch time in about 9 minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import REPO, machine_info, write_json  # noqa: E402

KS = (10,)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--only", choices=("lmrec", "recbole"), default=None)
    parser.add_argument("--lmrec-args", nargs="*", default=[], help="extra lmrec-train overrides")
    parser.add_argument("--gpu", action="store_true", help="train both on the first CUDA GPU (RecBole use_gpu)")
    parser.add_argument(
        "--jobs", type=int, default=1, help="seeds run at once, each in its own process (epoch times then share)"
    )
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


# -- the split ---------------------------------------------------------------------------------------------------
def lmrec_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user id, item id, rank in lmrec's order, split code) of every interaction of the bundled data's
    temporal leave-one-out split, as lmrec-train builds it."""
    from lmrec.cli.components import build_data
    from lmrec.config.compose import compose_config

    cfg = compose_config("train", ["experiment=sasrec", "logger=csv"])
    _, datamodule = build_data(cfg)
    data = datamodule.prepare()
    frame = data.interactions
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(), frame["user_idx"].to_numpy()))
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order] = np.arange(len(frame))
    users = data.users["user_id"].to_numpy()[frame["user_idx"].to_numpy()]
    items = data.items["item_id"].to_numpy()[frame["item_idx"].to_numpy()]
    return users, items, rank, frame["split"].to_numpy()


# -- RecBole -----------------------------------------------------------------------------------------------------
def _numpy2_aliases() -> None:
    """RecBole 1.2.1 re-creates numpy<1.24 aliases that numpy 2 removed; provide them so it runs unchanged."""
    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, old):
            setattr(np, old, new)


def run_recbole(split, seed: int, max_epochs: int, patience: int, workdir: Path, gpu: bool = False) -> dict:
    import pandas as pd
    import torch

    _numpy2_aliases()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    users, items, rank, codes = split
    folder = workdir / "lmrecloo"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"user_id:token": users, "item_id:token": items, "timestamp:float": rank}).to_csv(
        folder / "lmrecloo.inter", sep="\t", index=False
    )
    config = Config(
        model="SASRec",
        dataset="lmrecloo",
        config_dict={
            "data_path": str(workdir),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "MAX_ITEM_LIST_LENGTH": 50,
            "train_neg_sample_args": None,  # CE over the catalogue, as RecBole's SASRec documentation configures it
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
            "metrics": ["NDCG", "Recall"],
            "topk": list(KS),
            "valid_metric": "NDCG@10",
            "epochs": max_epochs,
            "stopping_step": patience,
            "use_gpu": gpu,
            "show_progress": False,
            "checkpoint_dir": str(workdir / "saved"),
            "seed": seed,
            "reproducibility": True,
            "metric_decimal_place": 12,
        },
    )
    init_seed(seed, True)
    start = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    _check_same_test_pairs(dataset, test_data, users, items, codes)
    print(f"  recbole data preparation: {time.perf_counter() - start:.1f} s", flush=True)
    model = SASRec(config, train_data._dataset)
    cwd = os.getcwd()
    os.chdir(workdir)  # RecBole's Trainer writes log_tensorboard/ into the working directory
    try:
        trainer = _timed_trainer(Trainer)(config, model)
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        trainer.model.load_state_dict(trainer.best_state)
        result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    finally:
        os.chdir(cwd)
    del torch
    return {
        "ndcg@10": float(result["ndcg@10"]),
        "recall@10": float(result["recall@10"]),
        "epochs": len(trainer.epoch_seconds),
        "epoch_s": statistics.mean(trainer.epoch_seconds),
        "training_samples": len(train_data._dataset),
    }


def _timed_trainer(base):
    class TimedTrainer(base):
        """RecBole's Trainer, recording the wall time of each training epoch (evaluation excluded)."""

        epoch_seconds: list[float]
        best_state: dict

        def _train_epoch(self, *args, **kwargs):
            start = time.perf_counter()
            out = super()._train_epoch(*args, **kwargs)
            self.epoch_seconds = [*getattr(self, "epoch_seconds", []), time.perf_counter() - start]
            print(f"  recbole epoch {len(self.epoch_seconds)}: {self.epoch_seconds[-1]:.1f} s", flush=True)
            return out

        def _save_checkpoint(self, *args, **kwargs):
            # Keep the best weights in memory: RecBole's own checkpoint pickles its config, which torch.load
            # with weights_only=True (the default, and this project's rule) refuses.
            import copy

            self.best_state = copy.deepcopy(self.model.state_dict())

    return TimedTrainer


def _check_same_test_pairs(dataset, test_data, users, items, codes) -> None:
    """RecBole's test (user, item) pairs must be lmrec's: otherwise the comparison is not on one split."""
    inter = test_data._dataset.inter_feat
    user_tokens = dataset.field2id_token["user_id"]
    item_tokens = dataset.field2id_token["item_id"]
    pairs = zip(inter["user_id"].tolist(), inter["item_id"].tolist(), strict=True)
    theirs = {(str(user_tokens[u]), str(item_tokens[i])) for u, i in pairs}
    ours = {(str(u), str(i)) for u, i, c in zip(users, items, codes, strict=True) if c == 2}
    if theirs != ours:
        raise SystemExit(f"RecBole's test split differs from lmrec's ({len(theirs ^ ours)} pairs); not comparable")


# -- lmrec -------------------------------------------------------------------------------------------------------
def run_lmrec(seed: int, max_epochs: int, patience: int, workdir: Path, extra: list[str], gpu: bool = False) -> dict:
    out = workdir / f"lmrec-{seed}"
    command = [
        sys.executable, "-m", "lmrec.cli.train", "experiment=sasrec", "task.mask_history=false", f"seed={seed}",
        f"trainer.max_epochs={max_epochs}", f"callbacks.early_stopping.patience={patience}", "logger=csv",
        "model.head.biases=false", f"hydra.run.dir={out}", "callbacks.rich_progress_bar=null",
        *(["trainer=gpu", "trainer.precision=32-true"] if gpu else []), *extra,  # fp32 as RecBole
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    return {  # seconds_per_epoch: lmrec's ResourceMonitor, training time of an epoch without validation
        "ndcg@10": metrics["test/ndcg@10"],
        "recall@10": metrics["test/recall@10"],
        "epochs": run["epochs"],  # trainer.current_epoch after fit: epochs completed
        "epoch_s": run["seconds_per_epoch"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)
    split = lmrec_split()
    result: dict = {"machine": machine_info(), "seeds": args.seeds, "lmrec": {}, "recbole": {}}
    workdir = Path(tempfile.mkdtemp(prefix="bench_sasrec_"))
    parallel = args.jobs > 1 and len(args.seeds) > 1
    try:
        if parallel:
            result.update(run_seeds_in_parallel(args, workdir))
        for seed in [] if parallel else args.seeds:
            if args.only in (None, "recbole"):
                result["recbole"][seed] = run_recbole(
                    split, seed, args.max_epochs, args.patience, workdir / f"rb{seed}", args.gpu
                )
                print("recbole", seed, result["recbole"][seed], flush=True)
            if args.only in (None, "lmrec"):
                result["lmrec"][seed] = run_lmrec(
                    seed, args.max_epochs, args.patience, workdir, args.lmrec_args, args.gpu
                )
                print("lmrec", seed, result["lmrec"][seed], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(args, result)


def run_seeds_in_parallel(args: argparse.Namespace, workdir: Path) -> dict:
    """Each seed in its own `bench_sasrec.py --seeds S` process, `--jobs` at a time; their JSON merged."""
    from concurrent.futures import ThreadPoolExecutor

    def one(seed: int) -> dict:
        out = workdir / f"seed{seed}.json"
        command = [
            sys.executable, __file__, "--seeds", str(seed), "--max-epochs", str(args.max_epochs),
            "--patience", str(args.patience), "--json", str(out), *(["--gpu"] if args.gpu else []),
            *(["--only", args.only] if args.only else []),
            *(["--lmrec-args", *args.lmrec_args] if args.lmrec_args else []),
        ]  # fmt: skip
        log_file = workdir / f"seed{seed}.log"
        with log_file.open("w") as log:
            done = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode:
            raise SystemExit(f"seed {seed} failed ({done.returncode}):\n{log_file.read_text()[-3000:]}")
        print(f"seed {seed} done", flush=True)
        return json.loads(out.read_text())

    merged: dict = {"lmrec": {}, "recbole": {}, "jobs": args.jobs}
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for part in pool.map(one, args.seeds):
            for name in ("lmrec", "recbole"):
                merged[name].update(part[name])
    return merged


def report(args: argparse.Namespace, result: dict) -> int:
    print(f"\n{'':10} {'NDCG@10':>10} {'Recall@10':>10} {'epoch s':>9} {'epochs':>7}")
    means = {}
    for name in ("recbole", "lmrec"):
        runs = list(result[name].values())
        if not runs:
            continue
        means[name] = {k: statistics.mean(r[k] for r in runs) for k in ("ndcg@10", "recall@10", "epoch_s", "epochs")}
        m = means[name]
        print(f"{name:10} {m['ndcg@10']:10.4f} {m['recall@10']:10.4f} {m['epoch_s']:9.2f} {m['epochs']:7.1f}")
    if len(means) == 2:
        lm, rb = means["lmrec"], means["recbole"]
        ratios = {
            "ndcg@10": lm["ndcg@10"] / rb["ndcg@10"],
            "recall@10": lm["recall@10"] / rb["recall@10"],
            "epoch_time": lm["epoch_s"] / rb["epoch_s"],
        }
        result["ratios_lmrec_over_recbole"] = ratios
        print("lmrec / RecBole:", json.dumps({k: round(v, 3) for k, v in ratios.items()}))
    result["means"] = means
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
