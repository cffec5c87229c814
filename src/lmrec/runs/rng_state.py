"""What a resumed run must continue from that Lightning does not save: the random-number streams and the
decision to stop, saved in every checkpoint.

Lightning restores weights, optimizer, scheduler, loop counters and callback state from a checkpoint, but not the
random generators. lmrec draws from torch's global generator for the training order (a DataLoader with
`shuffle=True` seeds its RandomSampler from it at each epoch), for negative sampling (`data/batches.py`) and for
dropout; numpy and Python's `random` are saved too, for components that use them. Without these states a resumed
run shuffles and samples differently from the run it continues, and its metrics differ.

The states are stored as plain tensors and lists so that checkpoints stay loadable with `weights_only=True`.

Under DDP every rank has generators of its own, and they drift apart as soon as the ranks draw different amounts
(a history tower's dropout draws one number per history entry of the rank's users). Only rank zero writes the
checkpoint, so each rank's states are gathered into it, and each rank resumes from its own.

Lightning restores EarlyStopping's counters but not `trainer.should_stop`. When the epoch whose checkpoint is
written is also the one early stopping stops on (an improvement smaller than `min_delta`, another monitor than
the checkpoint's, a stopping threshold), a run resumed from it would train on; the decision is saved too.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import Callback

log = logging.getLogger(__name__)

#: The checkpoint entry that holds the states (of rank zero under DDP, so older readers still find them).
CHECKPOINT_KEY = "lmrec_rng_states"
#: Under DDP: the list of every rank's states, by global rank.
PER_RANK_KEY = "lmrec_rng_states_per_rank"
#: Whether the run had decided to stop (`trainer.should_stop`) when the checkpoint was written.
STOP_KEY = "lmrec_should_stop"


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


def gather_from_every_rank(states: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's states, by global rank; a collective, so every rank must call it.

    `all_gather_object` pickles over the process group (gloo on CPU; NCCL through the rank's current GPU, which
    Lightning sets); the states' tensors are CPU tensors and come back as such, so the checkpoint stays
    weights_only-safe."""
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, states)
    return gathered


def states_for_rank(checkpoint: dict[str, Any], rank: int, world_size: int) -> dict[str, Any] | None:
    """The states rank `rank` of a job of `world_size` processes resumes from: its own when the checkpoint was
    written by a job of the same size, else rank zero's (with a warning); None (warned) when it holds none."""
    per_rank = checkpoint.get(PER_RANK_KEY)
    if per_rank is not None and len(per_rank) == world_size:
        return per_rank[rank]
    saved = len(per_rank) if per_rank is not None else 1
    if saved != world_size and rank == 0:
        log.warning(
            "the checkpoint holds the random generator states of %d process(es), this run has %d: every rank "
            "resumes from rank zero's, so the resumed epochs draw differently from an uninterrupted run",
            saved,
            world_size,
        )
    states = checkpoint.get(CHECKPOINT_KEY)
    if states is None:
        log.warning("the checkpoint holds no random generator states; the resumed epochs will draw differently")
    return states


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

    Under DDP each rank's states are gathered into the checkpoint (every rank calls `on_save_checkpoint`, so the
    gather is a collective all of them join) and each rank puts back its own. A resume with another number of
    processes cannot continue each rank's streams: it takes rank zero's, with a warning, and continues, no longer
    bit-identically. `tests/cli/test_resume_ddp.py` checks a DDP resume is bit-identical.

    It also keeps the stop decision: the checkpoint is written after early stopping has checked the same
    validation (Lightning runs checkpoint callbacks last), so `trainer.should_stop` is saved as decided, and a run
    resumed from a checkpoint that decided to stop trains no further epoch: it goes on to the test, as the
    uninterrupted run did (`tests/cli/test_resume_ddp.py::test_early_stopping_stops_at_the_same_epoch_after_a_resume`).
    """

    def __init__(self) -> None:
        self._restored: dict[str, Any] | None = None
        self._recreate_iterator = False
        self._stop = False

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint[STOP_KEY] = bool(trainer.should_stop)
        states = collect_rng_states()
        checkpoint[CHECKPOINT_KEY] = states
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            checkpoint[PER_RANK_KEY] = gather_from_every_rank(states)
            checkpoint[CHECKPOINT_KEY] = checkpoint[PER_RANK_KEY][0]

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._restored = states_for_rank(checkpoint, trainer.global_rank, trainer.world_size)
        self._stop = bool(checkpoint.get(STOP_KEY, False))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._stop:  # the fit loop checks `should_stop` before its next epoch, right after this hook
            log.info(
                "the run had decided to stop when its last checkpoint was written (early stopping): no more epochs"
            )
            trainer.should_stop, self._stop = True, False
        if self._restored is not None:
            set_rng_states(self._restored)
            self._restored, self._recreate_iterator = None, True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._recreate_iterator:
            self._recreate_iterator = False
            fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)
            if fetcher is not None:
                iter(fetcher)
