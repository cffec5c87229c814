"""Reading a run's checkpoints without executing pickled code, restoring a model from one, and what a checkpoint
holds of a tuned encoder.

A tuned encoder's frozen base weights (all of BERT's under LoRA) are identical to the encoder folder's files, so
checkpoints leave them out (`EncoderWeightsOut`) and record those files' SHA-256 instead; restoring accepts exactly
their absence and checks the SHA-256 (`restore_model`). Modules holding such an encoder are found by the
`TrainableEncoder` protocol, whatever tower holds them.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from torch import nn

from lmrec.atomic import atomic_path
from lmrec.encoders.tuning.base import TrainableEncoder
from lmrec.errors import CheckpointError, MissingInputError

log = logging.getLogger(__name__)


def load_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """A Lightning checkpoint, loaded with weights_only=True (no arbitrary unpickling).

    A file that is truncated, damaged or holds pickled code is refused with one line naming it, not a traceback
    from torch's reader.
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise MissingInputError(f"checkpoint {checkpoint} does not exist")
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{checkpoint} is not a readable checkpoint (truncated, damaged, or not saved by torch): {reason}"
        ) from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(f"{checkpoint} is not a Lightning checkpoint (no 'state_dict' entry)")
    return payload


def load_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The model state_dict of a Lightning checkpoint."""
    return load_checkpoint(checkpoint)["state_dict"]


def check_encoder_weights(source: Path, recorded: list[str] | None, current: list[str]) -> None:
    """Refuse a checkpoint whose tuned encoder started from other pretrained weights than the folder holds now
    (its frozen base weights are not in the file, so they must be the ones the encoder folder provides)."""
    if recorded is not None and recorded != current:
        raise CheckpointError(
            f"{source} was trained on top of encoder weights {recorded}, but the configured encoder folder holds "
            f"{current}; point model.encoder.name_or_path at the weights the run used"
        )


def trainable_encoders(model: nn.Module) -> list[tuple[str, TrainableEncoder]]:
    """(name, module) of every module whose pretrained weights train inside `model`, in module order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, TrainableEncoder)]


def frozen_encoder_keys(model: nn.Module) -> set[str]:
    """State-dict keys of encoder weights that do not train: identical to the encoder folder's, so not saved."""
    return {f"{prefix}.{key}" for prefix, encoder in trainable_encoders(model) for key in encoder.frozen_state_keys()}


def encoder_weights_sha256(model: nn.Module) -> list[str]:
    """Identity of each trainable encoder's pretrained weights, in module order (recorded in checkpoints)."""
    return [encoder.base_weights_sha256() for _, encoder in trainable_encoders(model)]


class EncoderWeightsOut(pl.Callback):
    """Leaves a tuned encoder's frozen base weights out of every checkpoint and records their files' SHA-256."""

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        state = checkpoint["state_dict"]
        for key in frozen_encoder_keys(pl_module):
            state.pop(key, None)
        if trainable_encoders(pl_module):
            checkpoint["encoder_weights_sha256"] = encoder_weights_sha256(pl_module)


def load_trained_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a checkpoint's state dict; only the frozen encoder weights (taken from the encoder folder) may be
    missing from it."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    absent = sorted(set(missing) - frozen_encoder_keys(model))
    if absent or unexpected:
        raise CheckpointError(
            f"checkpoint does not fit this model: missing {absent[:5]}{'...' if len(absent) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
        )


def restore_model(model: nn.Module, checkpoint: Path, payload: dict[str, Any] | None = None) -> int | None:
    """Load a checkpoint (or its already loaded `payload`) into `model`, checking its encoder's base weights; the
    training step it was saved at (None if it does not say)."""
    payload = payload if payload is not None else load_checkpoint(checkpoint)
    check_encoder_weights(checkpoint, payload.get("encoder_weights_sha256"), encoder_weights_sha256(model))
    try:
        load_trained_weights(model, payload["state_dict"])
    except CheckpointError as err:
        raise CheckpointError(f"{checkpoint}: {err}") from None
    step = payload.get("global_step")
    return int(step) if isinstance(step, int) else None


def load_matching_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> int:
    """Copy every tensor of `state` whose name and shape match `model`'s; returns how many (none is an error)."""
    own = model.state_dict()
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise CheckpointError(f"model.init_from={source}: no weight in it matches this model")
    model.load_state_dict(matching, strict=False)
    return len(matching)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file beside the target and renamed into place.

    Lightning's own writer stages the file in the system temp folder and moves it, which is a copy (and can leave
    a truncated `last.ckpt`) when that folder is on another file system, and leaves the staged file behind when
    the process is killed. Here a kill during the write leaves the previous checkpoint whole and a `.<name>.*.tmp`
    sibling, which `prune_stale_checkpoints` removes when the run resumes.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        with atomic_path(Path(path)) as tmp:
            torch.save(checkpoint, tmp)
        log.info("checkpoint saved: %s", path)


def tracked_checkpoints(payload: dict[str, Any]) -> set[str]:
    """File names of the checkpoints a checkpoint's ModelCheckpoint callbacks knew of (last, best, top-k)."""
    names: set[str] = set()
    for key, state in (payload.get("callbacks") or {}).items():
        if not str(key).startswith("ModelCheckpoint") or not isinstance(state, dict):
            continue
        paths = [state.get("best_model_path"), state.get("last_model_path"), state.get("kth_best_model_path")]
        paths += list((state.get("best_k_models") or {}).keys())
        names |= {Path(str(p)).name for p in paths if p}
    return names


def prune_stale_checkpoints(folder: Path, resume_from: Path, payload: dict[str, Any]) -> list[Path]:
    """Delete the checkpoints in `folder` that the checkpoint a run resumes from does not know of.

    They were written after it, by the attempt that was killed (a best checkpoint saved just before the kill, a
    half-written temporary file); the resumed run writes them again. Left in place they would be read as this
    run's results, or collide with the names the resumed run writes.
    """
    keep = tracked_checkpoints(payload) | {Path(resume_from).name}
    stale = [
        p
        for p in sorted(Path(folder).iterdir())
        if p.is_file()
        and p.name not in keep
        and (p.suffix == ".ckpt" or (p.name.startswith(".") and ".ckpt." in p.name))
    ]
    for path in stale:
        path.unlink()
        log.info("removed %s: written after %s by the attempt that stopped", path.name, Path(resume_from).name)
    return stale
