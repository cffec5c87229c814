"""Export the exact split with the dataset's original ids, so other libraries can be run on identical data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from lmrec.data.processed import ProcessedData


def split_frame(data: ProcessedData, name: str) -> pd.DataFrame:
    part = data.split(name)
    return pd.DataFrame(
        {
            "user": data.users["user_id"].to_numpy()[part["user_idx"].to_numpy()],
            "item": data.items["item_id"].to_numpy()[part["item_idx"].to_numpy()],
            "rating": part["rating"].to_numpy(),
            "timestamp": part["timestamp"].to_numpy(),
        }
    )


def export_split(data: ProcessedData, out_dir: Path) -> dict[str, Path]:
    """Write train.csv, val.csv and test.csv (user,item,rating,timestamp).

    All three are written to temporary files first and renamed only when every one succeeded, so a failure
    leaves no partial export behind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary: dict[str, str] = {}
    try:
        for name in ("train", "val", "test"):
            fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".tmp")
            os.close(fd)
            temporary[name] = tmp
            split_frame(data, name).to_csv(tmp, index=False, float_format="%.1f")
            os.chmod(tmp, 0o644)
        written = {}
        for name, tmp in temporary.items():
            written[name] = out_dir / f"{name}.csv"
            os.replace(tmp, written[name])
        return written
    finally:
        for tmp in temporary.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
