"""`lmrec-compare PATH... [options]`: are the differences between runs real? Paired significance tests on the
per-user metric values every evaluation writes (`<run>/per_user/<split>.parquet`), corrected for the number of
comparisons, with confidence intervals, over users and over training seeds.

PATH is a run folder or a sweep folder (searched for finished runs); runs that differ only by `seed` are one
configuration measured on several seeds. Prints the markdown table and writes the report (comparison.md, .tex,
.json, .csv and plots) into --out (default: <first PATH>/compare). Runs evaluated on other data or with another
protocol are refused rather than paired. Examples:

  lmrec-compare outputs/multiruns/2026-12-07/10-00-00 --baseline item_tower=id
  lmrec-compare runs/a runs/b --metrics ndcg@10 mrr@10 --test t --correction bh --out reports/ab

See docs/compare.md for what each figure means.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lmrec.compare.analysis import TESTS
from lmrec.compare.multiple import METHODS
from lmrec.errors import report_input_errors


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lmrec-compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="run or sweep folders")
    p.add_argument("--baseline", default=None, metavar="LABEL",
                   help="the configuration the others are compared with (its label or a unique part of it, e.g. "
                        "item_tower=id); default: every pair")  # fmt: skip
    p.add_argument("--metrics", nargs="+", default=None, metavar="M",
                   help="per-user columns to compare (default: the monitored metric and its recall)")  # fmt: skip
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--test", choices=tuple(TESTS), default="wilcoxon", help="the per-seed paired test on users")
    p.add_argument("--correction", choices=tuple(m for m in METHODS if m != "fdr_bh"), default="holm",
                   help="multiple-comparison correction over the whole table")  # fmt: skip
    p.add_argument("--alpha", type=float, default=0.05, help="significance level after correction")
    p.add_argument("--confidence", type=float, default=0.95, help="level of every interval")
    p.add_argument("--permutations", type=int, default=1000, help="sign flips of the permutation test")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the intervals")
    p.add_argument("--seed", type=int, default=0, help="seed of the permutations and resamples")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="report folder (default: <PATH>/compare)")
    p.add_argument("--wandb", action="store_true", help="also log the table and plots as one W&B run")
    p.add_argument("--wandb-project", default="lmrec", help="W&B project of --wandb")
    return p


def main(argv: list[str] | None = None) -> int:
    """Print the table and write the report; bad input is one line on stderr and exit code 2."""
    args = parser().parse_args(argv)
    from lmrec.compare.api import compare
    from lmrec.compare.report import to_markdown, write_report

    out = args.out if args.out is not None else args.paths[0] / "compare"
    options = {k: getattr(args, k) for k in ("baseline", "metrics", "split", "test", "correction", "alpha",
                                             "confidence", "permutations", "resamples", "seed")}  # fmt: skip
    with report_input_errors():
        comparison = compare(args.paths, **options)
    print(to_markdown(comparison), end="")
    written = write_report(comparison, out)
    print(f"\nreport written to {out}: {', '.join(sorted(p.name for p in written.values()))}")
    if args.wandb:
        from lmrec.sweeps.compare_report import log_report_to_wandb
        from lmrec.sweeps.comparison import wandb_group_of

        try:
            log_report_to_wandb(comparison, written, args.wandb_project, wandb_group_of(args.paths[0]), out)
        except Exception as err:  # the report is on disk; say what failed in one line
            print(f"could not log the report to W&B: {type(err).__name__}: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
