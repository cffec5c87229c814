"""Collect the metrics.json of every run under a folder (e.g. a multirun sweep) into one markdown table.

Usage: python scripts/summarize_runs.py outputs/multiruns/2026-11-27/18-20-00 [--metrics test/rmse test/ndcg@10]
Each row is one run: its command-line overrides (from .hydra/overrides.yaml), its test metrics and its
trainable parameter count (from run.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml


def collect(root: Path) -> list[dict]:
    rows = []
    for metrics_file in sorted(root.rglob("metrics.json")):
        run_dir = metrics_file.parent
        overrides_file = run_dir / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
        info_file = run_dir / "run.json"
        info = json.loads(info_file.read_text()) if info_file.is_file() else {}
        rows.append(
            {
                "run": " ".join(o for o in overrides if not o.startswith(("logger=", "hydra."))) or run_dir.name,
                "metrics": json.loads(metrics_file.read_text()),
                "trainable": info.get("params", {}).get("trainable"),
                "seconds": info.get("seconds"),
            }
        )
    return rows


def markdown(rows: list[dict], metrics: list[str]) -> str:
    header = ["run", *metrics, "trainable params", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        values = [f"{row['metrics'][m]:.4f}" if m in row["metrics"] else "" for m in metrics]
        seconds = f"{row['seconds']:.0f}" if row["seconds"] else ""
        lines.append("| " + " | ".join([row["run"], *values, f"{row['trainable'] or ''}", seconds]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="a run or sweep folder")
    parser.add_argument(
        "--metrics", nargs="+", default=["test/rmse", "test/mae", "test/auc", "test/ndcg@10", "test/recall@10"]
    )
    args = parser.parse_args()
    rows = collect(args.root)
    if not rows:
        raise SystemExit(f"no metrics.json under {args.root}")
    print(markdown(rows, args.metrics))


if __name__ == "__main__":
    main()
