"""The random-number streams a resumed run must continue from, saved in every checkpoint.

Lightning restores weights, optimizer, scheduler, loop counters and callback state from a checkpoint, but not the
random generators. lmrec draws from torch's global generator for the training order (a DataLoader with
`shuffle=True` seeds its RandomSampler from it at each epoch), for negative sampling (`data/batches.py`) and for
dropout; numpy and Python's `random` are saved too, for components that use them. Without these states a resumed
run shuffles and samples differently from the run it continues, and its metrics differ.

The states are stored as plain tensors and lists so that checkpoints stay loadable with `weights_only=True`.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

log = logging.getLogger(__name__)

#: The checkpoint entry that holds the states.
CHECKPOINT_KEY = "lmrec_rng_states"


def collect_rng_states() -> dict[str, Any]:
    """torch (CPU and every initialised CUDA device), numpy and Python generator states, weights_only-safe."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back what `collect_rng_states` saved (a CUDA state only where this process has the same devices)."""
    torch.set_rng_state(states["torch"])
    saved = states["numpy"]
    keys = saved["keys"].numpy().astype(np.uint32)
    np.random.set_state((saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["gauss"]))
    python = states["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class RngStateCheckpoint(Callback):
    """Saves the generator states into each checkpoint and, when fit resumes from one, restores them, so the
    resumed epochs draw the same batch order, negatives and dropout masks as an uninterrupted run.

    The states are taken when the checkpoint is written (the end of a validation) and put back in
    `on_train_start`, after Lightning's sanity check (which runs with its generators isolated). One more step
    makes the draws line up: an uninterrupted run creates each later epoch's DataLoader iterator after
    `on_train_epoch_start` (drawing its base seed, then the sampler's seed, from torch's generator), while a
    resumed run reuses the iterator Lightning created before the states were restored. So the first resumed
    epoch re-creates its iterator, as every epoch after the first does. `tests/cli/test_resume.py` checks the
    result is bit-identical, which also catches a Lightning release that changes this order.

    Under DDP only rank zero writes the file, so every rank resumes with rank zero's states: the ranks start from
    the same seed anyway (`seed_everything`), but bit-identical continuation is promised for one process only.
    """

    def __init__(self) -> None:
        self._restored: dict[str, Any] | None = None
        self._recreate_iterator = False

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = collect_rng_states()

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._restored = checkpoint.get(CHECKPOINT_KEY)
        if self._restored is None:
            log.warning("the checkpoint holds no random generator states; the resumed epochs will draw differently")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._restored is not None:
            set_rng_states(self._restored)
            self._restored, self._recreate_iterator = None, True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._recreate_iterator:
            self._recreate_iterator = False
            fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
            if fetcher is not None:
                iter(fetcher)
