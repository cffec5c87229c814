"""Reading a run's checkpoints without executing pickled code."""

from __future__ import annotations

from pathlib import Path

import torch


def load_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The model state_dict of a Lightning checkpoint, loaded with weights_only=True (no arbitrary unpickling)."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "state_dict" not in payload:
        raise ValueError(f"{checkpoint} is not a Lightning checkpoint (no 'state_dict' entry)")
    return payload["state_dict"]
