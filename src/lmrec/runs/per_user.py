"""`per_user/<split>.parquet`: each evaluated user's (interaction's, impression's) metric values, in the run folder.

The unit of evidence (`lmrec.compare` pairs two runs' files user by user). Rows carry the dataset's own ids (never
internal indices): `user_id`, and `item_id` for the rating task's per-interaction rows or `impression_id` for MIND
impressions; a column per metric the split logs, named as in metrics.json without the split prefix (`ndcg@10`,
`sampled100/ndcg@10`, `cold/ndcg@10`, `users_q1/ndcg@10`), NaN where the metric is undefined for that row (left out
of the mean, as metrics.json leaves it out); and `user_bucket` when `task.buckets` groups users. Each column's mean
over its non-NaN rows is the metrics.json value of that name (for the rating task, `mae`; RMSE is the square root
of the mean of `squared_error`). Written whole or not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmrec.atomic import atomic_path
from lmrec.data.processed import ProcessedData

PER_USER_DIR = "per_user"
#: Key columns of the recorded rows -> the id column written, and how it maps to the dataset's ids.
ID_COLUMNS = {"user": "user_id", "item": "item_id", "impression": "impression_id"}


def per_user_frame(rows: dict[str, np.ndarray], data: ProcessedData) -> pd.DataFrame:
    """The recorded rows with the dataset's ids instead of indices, and each user's bucket label if any."""
    frame = pd.DataFrame()
    ids = {"user": data.users["user_id"].to_numpy(), "item": data.items["item_id"].to_numpy()}
    for key, column in ID_COLUMNS.items():
        if key in rows:
            frame[column] = ids[key][rows[key]] if key in ids else rows[key]
    metrics = {name: values for name, values in rows.items() if name not in ID_COLUMNS}
    for name, values in metrics.items():
        frame[name] = values
    buckets = sorted({name.split("/", 1)[0] for name in metrics if name.startswith("users_")})
    if buckets:
        label = np.full(len(frame), None, dtype=object)
        for bucket in buckets:
            inside = ~np.all(np.isnan(np.stack([v for n, v in metrics.items() if n.startswith(bucket + "/")])), axis=0)
            label[inside] = bucket
        frame["user_bucket"] = label
    return frame


def write_per_user(folder: Path, split: str, rows: dict[str, Any] | None, data: ProcessedData) -> Path | None:
    """Write `<folder>/per_user/<split>.parquet` (None when the task kept no rows); returns its path."""
    if rows is None:
        return None
    path = Path(folder) / PER_USER_DIR / f"{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        per_user_frame(rows, data).to_parquet(tmp, index=False)
    return path


def read_per_user(folder: Path, split: str = "test") -> pd.DataFrame | None:
    """A run folder's per-user table of `split`, or None when the run wrote none."""
    path = Path(folder) / PER_USER_DIR / f"{split}.parquet"
    return pd.read_parquet(path) if path.is_file() else None
