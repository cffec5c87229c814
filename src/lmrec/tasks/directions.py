"""Which way each metric improves, declared once: checkpointing, early stopping, learning-rate plateaus and the
Optuna direction all follow the monitored metric through `${lmrec.metric_mode:${task.monitor}}`, so choosing
`task.monitor=val/mae` cannot leave a checkpoint callback maximising an error.

Kept free of torch imports: the resolver runs while Hydra composes the config.
"""

from __future__ import annotations

#: Metric families where smaller is better; every other metric (NDCG, recall, AUC, ...) is better when larger.
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "loss"})


def metric_family(name: str) -> str:
    """`val/ndcg@10` -> `ndcg`; `best/val/rmse` -> `rmse`."""
    return name.rsplit("/", 1)[-1].split("@", 1)[0].lower()


def lower_is_better(name: str) -> bool:
    return metric_family(name) in LOWER_IS_BETTER


def metric_mode(name: str) -> str:
    """`min` or `max` for a metric name, as Lightning's callbacks spell it."""
    return "min" if lower_is_better(str(name)) else "max"
