"""Learning-rate schedules defined over optimizer steps (warmup, then decay), for encoder tuning."""

from __future__ import annotations

import torch
from transformers import get_scheduler

from lmrec.errors import ConfigError

DECAYS = ("linear", "cosine", "constant")


def warmup_decay(
    optimizer: torch.optim.Optimizer, num_training_steps: int, warmup_ratio: float = 0.1, decay: str = "linear"
) -> torch.optim.lr_scheduler.LRScheduler:
    """Warm up linearly over `warmup_ratio` of the steps, then decay; transformers' schedules do the arithmetic.

    The ratio (not a step count) keeps one config right for any dataset size, batch size or number of epochs;
    the module passes the trainer's step count.
    """
    if not 0.0 <= float(warmup_ratio) < 1.0:
        raise ConfigError(f"model.scheduler.warmup_ratio={warmup_ratio}; expected a value in [0, 1)")
    if decay not in DECAYS:
        raise ConfigError(f"model.scheduler.decay={decay!r}; expected one of {DECAYS}")
    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[decay]
    steps = max(1, int(num_training_steps))
    return get_scheduler(name, optimizer, num_warmup_steps=int(warmup_ratio * steps), num_training_steps=steps)
