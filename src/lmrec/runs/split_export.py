"""Export the exact split with the dataset's original ids, so other libraries can be run on identical data."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from lmrec.atomic import atomic_path
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

    The three files are renamed into place only once all three are written, so a failure leaves no partial
    export. Ratings keep their shortest exact representation (3.25 stays 3.25).
    """
    out_dir = Path(out_dir)
    with ExitStack() as stack:
        paths = {name: stack.enter_context(atomic_path(out_dir / f"{name}.csv")) for name in ("train", "val", "test")}
        for name, tmp in paths.items():
            split_frame(data, name).to_csv(tmp, index=False)
    return {name: out_dir / f"{name}.csv" for name in paths}
