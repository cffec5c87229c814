"""Run folders as lmrec-train leaves them (metrics.json, run.json, .hydra/), written directly, for table tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def write_run(
    run_dir: Path,
    overrides: list[str],
    metrics: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    job_status: dict[str, Any] | None = None,
) -> Path:
    """A run folder holding what is given (None: that file was never written)."""
    hydra = run_dir / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (hydra / "config.yaml").write_text(yaml.safe_dump(config or {"model": {"name": "x"}}))
    for name, payload in (("metrics.json", metrics), ("run.json", info), ("job_status.json", job_status)):
        if payload is not None:
            (run_dir / name).write_text(json.dumps(payload))
    return run_dir


def run_info(trainable: int, monitor: str = "val/ndcg@10", **facts: Any) -> dict[str, Any]:
    """A run.json with the facts the tables read."""
    return {"monitor": monitor, "params": {"trainable": trainable, "trainable_pct": 1.5}, **facts}
