"""`lmrec-summarize ROOT [--metrics ...] [--average-over seed] [--plot PNG]`: one markdown table of every run under
a folder (a sweep, or a folder of sweeps), printed to stdout.

Each row is one configuration: its command-line overrides (from .hydra/overrides.yaml), its test metrics (from
metrics.json) and its trainable parameter count (from run.json). With --average-over seed, runs that differ only in
the seed are one row showing mean ± standard deviation and the number of runs; --plot draws one bar chart per
metric. Examples:

  lmrec-summarize outputs/multiruns/2026-11-27/18-20-00
  lmrec-summarize outputs/towers --average-over seed --plot docs/towers.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmrec.errors import report_input_errors
from lmrec.sweeps.run_table import group_runs, grouped_markdown, plot_groups, runs_under

DEFAULT_METRICS = ["test/rmse", "test/mae", "test/auc", "test/ndcg@10", "test/recall@10"]


def main(argv: list[str] | None = None) -> int:
    """Print the table (and write the plot); a bad ROOT is one line on stderr and exit code 2."""
    parser = argparse.ArgumentParser(
        prog="lmrec-summarize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", type=Path, help="a run or sweep folder (searched for metrics.json at any depth)")
    parser.add_argument("--metrics", nargs="+", default=DEFAULT_METRICS, help="columns, in this order")
    parser.add_argument("--average-over", nargs="*", default=[], help="override keys to average over, e.g. seed")
    parser.add_argument("--plot", type=Path, default=None, help="also write a bar chart (PNG) here")
    args = parser.parse_args(argv)
    with report_input_errors():
        groups = group_runs(runs_under(args.root), args.average_over)
    print(grouped_markdown(groups, args.metrics), end="")
    if args.plot:
        if plot_groups(groups, args.metrics, args.plot) is None:
            print(f"no plot: no run has any of {', '.join(args.metrics)}", file=sys.stderr)
        else:
            print(f"plot written to {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
