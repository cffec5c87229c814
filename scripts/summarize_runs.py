"""Collect the metrics.json of every run under a folder (e.g. a multirun sweep) into one markdown table.

Usage:
  python scripts/summarize_runs.py outputs/multiruns/2026-11-27/18-20-00
  python scripts/summarize_runs.py outputs/towers --average-over seed --plot docs/towers.png

Each row is one configuration: its command-line overrides (from .hydra/overrides.yaml), its test metrics and its
trainable parameter count (from run.json). With --average-over seed, runs that differ only in the seed are one row
showing mean ± standard deviation and the number of runs; --plot draws one bar chart per metric (needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

import yaml

DEFAULT_METRICS = ["test/rmse", "test/mae", "test/auc", "test/ndcg@10", "test/recall@10"]
HIDDEN_PREFIXES = ("logger=", "hydra.", "paths.")


def collect(root: Path, average_over: list[str]) -> list[dict]:
    """One entry per configuration: the overrides that name it and every run's metrics."""
    groups: dict[str, dict] = {}

    def natural(path: Path) -> list:  # job 2 before job 10
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]

    for metrics_file in sorted(root.rglob("metrics.json"), key=natural):
        run_dir = metrics_file.parent
        overrides_file = run_dir / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
        shown = [o for o in overrides if not o.startswith(HIDDEN_PREFIXES)]
        name = " ".join(o for o in shown if o.split("=", 1)[0] not in average_over) or run_dir.name
        info_file = run_dir / "run.json"
        info = json.loads(info_file.read_text()) if info_file.is_file() else {}
        group = groups.setdefault(name, {"run": name, "metrics": [], "trainable": None})
        group["metrics"].append(json.loads(metrics_file.read_text()))
        group["trainable"] = info.get("params", {}).get("trainable")
    return list(groups.values())


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(group: dict, metric: str) -> str:
    values = [m[metric] for m in group["metrics"] if metric in m]
    if not values:
        return ""
    mean, std = summary(values)
    return f"{mean:.4f} ± {std:.4f}" if len(values) > 1 else f"{mean:.4f}"


def markdown(groups: list[dict], metrics: list[str]) -> str:
    header = ["run", *metrics, "runs", "trainable params"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in groups:
        values = [cell(group, m) for m in metrics]
        lines.append(
            "| " + " | ".join([group["run"], *values, str(len(group["metrics"])), f"{group['trainable']}"]) + " |"
        )
    return "\n".join(lines)


def plot(groups: list[dict], metrics: list[str], path: Path) -> None:
    """One panel per metric, one bar per configuration (mean, with the standard deviation as an error bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [m for m in metrics if any(m in run for g in groups for run in g["metrics"])]
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], present, strict=True):
        rows = [g for g in groups if any(metric in m for m in g["metrics"])]
        stats = [summary([m[metric] for m in g["metrics"] if metric in m]) for g in rows]
        labels = ["\n".join(part.split("=", 1)[-1] for part in g["run"].split()) for g in rows]
        ax.bar(range(len(rows)), [s[0] for s in stats], yerr=[s[1] for s in stats], capsize=4, color="#4C72B0")
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
        low = min(s[0] - s[1] for s in stats)
        high = max(s[0] + s[1] for s in stats)
        ax.set_ylim(max(0.0, low - 0.15 * (high - low + 1e-9)), high + 0.15 * (high - low + 1e-9))
        ax.set_title(metric + (" (lower is better)" if metric.endswith(("rmse", "mae")) else ""), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="a run or sweep folder")
    parser.add_argument("--metrics", nargs="+", default=DEFAULT_METRICS)
    parser.add_argument("--average-over", nargs="*", default=[], help="override keys to average over, e.g. seed")
    parser.add_argument("--plot", type=Path, default=None, help="also write a bar chart (PNG) here")
    args = parser.parse_args()
    groups = collect(args.root, args.average_over)
    if not groups:
        raise SystemExit(f"no metrics.json under {args.root}")
    print(markdown(groups, args.metrics))
    if args.plot:
        plot(groups, args.metrics, args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
