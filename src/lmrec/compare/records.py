"""A comparison as data files: JSON holding every figure, CSV with one row per configuration × metric × seed and
per pair × metric × seed.

JSON is `Comparison.as_dict()` itself with NaN (undefined: a p-value with one seed, a relative change from 0)
written as null, since NaN is not JSON and strict readers refuse it. The CSV is for spreadsheets and pandas: every
figure at full precision, an empty cell where undefined. Its rows:

  kind=configuration, level=users   a configuration's mean over users on one seed, with its t and bootstrap intervals
  kind=configuration, level=seeds   its mean ± std over seeds with the t-interval (seed empty)
  kind=pair, level=users            the paired tests of `configuration` against `baseline` on one seed
  kind=pair, level=seeds            the seed-level paired t-test of the pair (seed empty)
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

#: The columns every CSV row has, before the figures (whose columns are the union of the rows' keys, in order).
KEY_COLUMNS = ("kind", "level", "configuration", "baseline", "metric", "seed")


def without_nan(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None, recursively (tuples become lists, as JSON has)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nan(v) for v in value]
    return value


def to_json(comparison: dict[str, Any]) -> str:
    """The comparison as JSON (NaN as null); `json.loads` gives back the dict with None for NaN."""
    return json.dumps(without_nan(comparison), indent=2, allow_nan=False) + "\n"


def csv_rows(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The CSV's rows as dicts (see the module docstring), in the comparison's order."""
    rows: list[dict[str, Any]] = []
    metrics = comparison["metrics"]
    for configuration in comparison["configurations"]:
        label = configuration["label"]
        for metric in metrics:
            for seed in configuration["per_seed"]:
                figures = {**seed.get(metric, {}), "folder": seed.get("folder")}
                rows.append(_row("configuration", "users", label, None, metric, seed["seed"], figures))
            rows.append(_row("configuration", "seeds", label, None, metric, None, configuration["over_seeds"][metric]))
    for pair in comparison.get("pairs") or []:
        for metric in metrics:
            for seed in pair["per_seed"]:
                rows.append(_row("pair", "users", pair["b"], pair["a"], metric, seed["seed"], seed.get(metric, {})))
            rows.append(_row("pair", "seeds", pair["b"], pair["a"], metric, None, pair["over_seeds"][metric]))
    return rows


def _row(kind: str, level: str, configuration: str, baseline: str | None, metric: str, seed: Any,
         figures: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    keys = dict(zip(KEY_COLUMNS, (kind, level, configuration, baseline, metric, seed), strict=True))
    return {**keys, **figures}


def csv_columns(rows: list[dict[str, Any]]) -> list[str]:
    columns = dict.fromkeys(KEY_COLUMNS)
    for row in rows:
        columns.update(dict.fromkeys(k for k in row if k != "folder"))
    return [*columns, "folder"]


def to_csv(comparison: dict[str, Any]) -> str:
    rows = csv_rows(comparison)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=csv_columns(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in without_nan(row).items()})
    return out.getvalue()
