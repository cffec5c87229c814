"""Files a run leaves behind: JSON written atomically, checkpoints read without executing pickled code."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file and rename, so a crash never leaves half a metrics.json behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=True)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; run files are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The model state_dict of a Lightning checkpoint, loaded with weights_only=True (no arbitrary unpickling)."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if "state_dict" not in payload:
        raise ValueError(f"{checkpoint} is not a Lightning checkpoint (no 'state_dict' entry)")
    return payload["state_dict"]
