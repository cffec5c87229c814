"""Reading a run's checkpoints without executing pickled code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lmrec.errors import InputError

if TYPE_CHECKING:
    from lmrec.module import RecommenderModule


def load_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """A Lightning checkpoint, loaded with weights_only=True (no arbitrary unpickling)."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "state_dict" not in payload:
        raise ValueError(f"{checkpoint} is not a Lightning checkpoint (no 'state_dict' entry)")
    return payload


def load_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The model state_dict of a Lightning checkpoint."""
    return load_checkpoint(checkpoint)["state_dict"]


def check_encoder_weights(source: Path, recorded: list[str] | None, current: list[str]) -> None:
    """Refuse a checkpoint whose tuned encoder started from other pretrained weights than the folder holds now
    (its frozen base weights are not in the file, so they must be the ones the encoder folder provides)."""
    if recorded is not None and recorded != current:
        raise InputError(
            f"{source} was trained on top of encoder weights {recorded}, but the configured encoder folder holds "
            f"{current}; point model.encoder.name_or_path at the weights the run used"
        )


def restore_model(model: RecommenderModule, checkpoint: Path, payload: dict[str, Any] | None = None) -> None:
    """Load a checkpoint (or its already loaded `payload`) into `model`, checking its encoder's base weights."""
    payload = payload if payload is not None else load_checkpoint(checkpoint)
    current = [encoder.encoder.weights_sha256 for encoder in model.tuned_encoders()]
    check_encoder_weights(checkpoint, payload.get("encoder_weights_sha256"), current)
    model.load_trained_weights(payload["state_dict"])
