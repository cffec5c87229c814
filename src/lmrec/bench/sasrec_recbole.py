"""RecBole 1.2.1's SASRec on lmrec's own temporal leave-one-out split: the reference side of the `sasrec` benchmark.

lmrec's split is written as a RecBole atomic `.inter` file whose timestamp column is each interaction's rank in
lmrec's own order (time, then file row), so RecBole's leave-one-out (`eval_args.split={LS: valid_and_test}`,
`order: TO`) picks exactly lmrec's validation and test items whatever its sort does with equal timestamps; the test
pairs are checked to equal lmrec's before training. RecBole's SASRec defaults (width 64, 2 layers, 2 heads,
feed-forward 256, dropout 0.5, max length 50, CE over the catalogue, Adam lr 0.001, early stopping on validation).
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

KS = (10,)


def lmrec_split(cfg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(user id, item id, rank in lmrec's order, split code) of every interaction of the split `cfg` builds."""
    from lmrec.bench.configured import prepared

    _, datamodule = prepared(cfg)
    data = datamodule.data
    frame = data.interactions
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(), frame["user_idx"].to_numpy()))
    rank = np.empty(len(frame), dtype=np.int64)
    rank[order] = np.arange(len(frame))
    users = data.users["user_id"].to_numpy()[frame["user_idx"].to_numpy()]
    items = data.items["item_id"].to_numpy()[frame["item_idx"].to_numpy()]
    return users, items, rank, frame["split"].to_numpy()


def timed_trainer(base: type) -> type:
    """A subclass of RecBole's `Trainer` that times each training epoch."""

    class TimedTrainer(base):
        """RecBole's Trainer, recording the wall time of each training epoch (evaluation excluded)."""

        epoch_seconds: list[float]
        best_state: dict

        def _train_epoch(self, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = super()._train_epoch(*args, **kwargs)
            self.epoch_seconds = [*getattr(self, "epoch_seconds", []), time.perf_counter() - start]
            return out

        def _save_checkpoint(self, *args: Any, **kwargs: Any) -> None:
            # Keep the best weights in memory: RecBole's own checkpoint pickles its config, which torch.load with
            # weights_only=True (the default, and this project's rule) refuses.
            self.best_state = copy.deepcopy(self.model.state_dict())

    return TimedTrainer


def same_test_pairs(dataset: Any, test_data: Any, users: np.ndarray, items: np.ndarray, codes: np.ndarray) -> bool:
    """RecBole's test (user, item) pairs must be lmrec's: otherwise the comparison is not on one split."""
    inter = test_data._dataset.inter_feat
    user_tokens, item_tokens = dataset.field2id_token["user_id"], dataset.field2id_token["item_id"]
    pairs = zip(inter["user_id"].tolist(), inter["item_id"].tolist(), strict=True)
    theirs = {(str(user_tokens[u]), str(item_tokens[i])) for u, i in pairs}
    ours = {(str(u), str(i)) for u, i, c in zip(users, items, codes, strict=True) if c == 2}
    return theirs == ours


def run_recbole(split: tuple, seed: int, max_epochs: int, patience: int, workdir: Path, gpu: bool) -> dict[str, Any]:
    """RecBole's SASRec on lmrec's split (see the module docstring): test metrics, epochs, epoch seconds."""
    import os

    import pandas as pd

    from lmrec.bench.references import numpy2_aliases

    numpy2_aliases()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    users, items, rank, codes = split
    folder = workdir / "lmrecloo"
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"user_id:token": users, "item_id:token": items, "timestamp:float": rank})
    frame.to_csv(folder / "lmrecloo.inter", sep="\t", index=False)
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
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    if not same_test_pairs(dataset, test_data, users, items, codes):
        raise RuntimeError("RecBole's test split differs from lmrec's; the two are not comparable")
    model = SASRec(config, train_data._dataset)
    cwd = os.getcwd()
    os.chdir(workdir)  # RecBole's Trainer writes log_tensorboard/ into the working directory
    try:
        trainer = timed_trainer(Trainer)(config, model)
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        trainer.model.load_state_dict(trainer.best_state)
        result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    finally:
        os.chdir(cwd)
    return {
        "ndcg@10": float(result["ndcg@10"]),
        "recall@10": float(result["recall@10"]),
        "epochs": len(trainer.epoch_seconds),
        "epoch_s": statistics.mean(trainer.epoch_seconds),
        "training_samples": len(train_data._dataset),
    }
