"""Reading a run's checkpoints without executing pickled code, and restoring a model from one."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lmrec.errors import CheckpointError, MissingInputError

if TYPE_CHECKING:
    from lmrec.model.module import RecommenderModule


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


def restore_model(model: RecommenderModule, checkpoint: Path, payload: dict[str, Any] | None = None) -> None:
    """Load a checkpoint (or its already loaded `payload`) into `model`, checking its encoder's base weights."""
    payload = payload if payload is not None else load_checkpoint(checkpoint)
    check_encoder_weights(checkpoint, payload.get("encoder_weights_sha256"), model.encoder_weights_sha256())
    try:
        model.load_trained_weights(payload["state_dict"])
    except CheckpointError as err:
        raise CheckpointError(f"{checkpoint}: {err}") from None


def load_matching_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> int:
    """Copy every tensor of `state` whose name and shape match `model`'s; returns how many (none is an error)."""
    own = model.state_dict()
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise CheckpointError(f"model.init_from={source}: no weight in it matches this model")
    model.load_state_dict(matching, strict=False)
    return len(matching)
