"""Rating baseline: Surprise's SVD (default parameters) on a split exported by lmrec, scored like lmrec's test RMSE.

What is measured
    RMSE and MAE on the test rows of an exact lmrec split (written by `lmrec-train ... export_split=true` to
    <run dir>/split/{train,val,test}.csv, original user/item ids), of `surprise.SVD()` with its default parameters
    (100 factors, 20 epochs, lr 0.005, reg 0.02, biases) and `random_state=--seed`, trained on train.csv only
    (val.csv is not used: SVD's defaults need no tuning set) with `Reader(rating_scale=(0.5, 5.0))`.
    Test pairs whose user or item is absent from train.csv get SVD's own estimate for them (the global mean plus
    whichever bias is known); their count is printed.

Why
    lmrec's rating model should be judged against the classic matrix-factorisation baseline on exactly the same
    rows. `--lmrec-metrics` reads the lmrec run's metrics.json and prints the two side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import pandas as pd
from benchutil import write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split-dir", required=True, help="folder with train.csv and test.csv (user,item,rating,...)")
    parser.add_argument("--seed", type=int, default=0, help="SVD random_state (default 0)")
    parser.add_argument("--lmrec-metrics", default=None, help="an lmrec rating run's metrics.json, for comparison")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from surprise import SVD, Dataset, Reader, accuracy

    split = Path(args.split_dir)
    missing = [name for name in ("train.csv", "test.csv") if not (split / name).is_file()]
    if missing:
        print(
            f"error: {split} lacks {', '.join(missing)}; export a split with lmrec-train ... export_split=true",
            file=sys.stderr,
        )
        return 2
    columns = ["user", "item", "rating"]
    train = pd.read_csv(split / "train.csv")[columns]
    test = pd.read_csv(split / "test.csv")[columns]

    data = Dataset.load_from_df(train, Reader(rating_scale=(0.5, 5.0)))
    trainset = data.build_full_trainset()
    algo = SVD(random_state=args.seed)
    start = time.perf_counter()
    algo.fit(trainset)
    fit_seconds = time.perf_counter() - start
    testset = list(test.itertuples(index=False, name=None))
    predictions = algo.test(testset)
    rmse = accuracy.rmse(predictions, verbose=False)
    mae = accuracy.mae(predictions, verbose=False)
    cold = int((~test["user"].isin(train["user"]) | ~test["item"].isin(train["item"])).sum())

    print(f"Surprise SVD() defaults, random_state={args.seed}; split {split}")
    print(
        f"train rows {len(train)}, test rows {len(test)} ({cold} with a user or item unseen in train: "
        f"global mean + known biases); fit {fit_seconds:.1f} s"
    )
    print(f"{'model':<16}{'test RMSE':>11}{'test MAE':>11}")
    print(f"{'SVD':<16}{rmse:>11.4f}{mae:>11.4f}")

    result: dict = {
        "benchmark": "baseline_surprise",
        "split_dir": str(split),
        "seed": args.seed,
        "train_rows": len(train),
        "test_rows": len(test),
        "test_rows_cold": cold,
        "fit_s": fit_seconds,
        "svd": {"rmse": rmse, "mae": mae},
    }
    if args.lmrec_metrics:
        metrics = json.loads(Path(args.lmrec_metrics).read_text())
        lm_rmse = metrics.get("test/rmse", math.nan)
        lm_mae = metrics.get("test/mae", math.nan)
        print(f"{'lmrec':<16}{lm_rmse:>11.4f}{lm_mae:>11.4f}   ({args.lmrec_metrics})")
        if math.isnan(lm_rmse):
            print("the lmrec metrics file has no test/rmse: is it a rating run?")
        else:
            lower = "lmrec" if lm_rmse < rmse else "SVD" if rmse < lm_rmse else "neither (equal)"
            print(f"lower test RMSE: {lower} (lmrec - SVD = {lm_rmse - rmse:+.4f})")
            result["lower_rmse"] = lower
        result["lmrec"] = {"rmse": lm_rmse, "mae": lm_mae, "metrics_file": str(args.lmrec_metrics)}
    write_json(args.json_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
