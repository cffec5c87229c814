"""Comparison statistics speed: a whole lmrec-compare table on synthetic per-user metric values, against 60 s.

What is measured
    `--runs` runs (10) of `--users` users (138,000) x `--metrics` metrics (20) of synthetic per-user values shaped
    like ranking metrics (about 40 % zeros, values in [0, 1] rounded to 4 decimals so ties occur, one metric
    undefined for 5 % of the users). The first run is the baseline; the others are compared with it. Phases, each
    timed `--repeats` times in turn after a warm-up on 2,000 users:
      intervals    `mean_intervals` of every run (all runs x metrics columns at once): t- and bootstrap intervals;
      comparisons  `against_baseline`: t-test, Wilcoxon, `--permutations` sign flips and the bootstrap interval
                   of the relative change (`--resamples`), for every run x metric;
      correction   Holm over the table, for each of the three tests.
    `total_s` (the sum of the phases' medians) is the figure held against the 60 s target (`ratio_to_target`).
    Beside them: the sign flips alone on all columns (`sign_flips_only`), and `scipy.stats.permutation_test` on
    one column with the same number of permutations, times the number of columns (`scipy_permutation_all_s`,
    extrapolated): why lmrec draws the signs once for all columns instead of calling scipy per metric.

Why
    A comparison report must be interactive on a full MovieLens-scale evaluation (138,000 users) on a laptop-class
    machine. Quick: 2,000 users, 5 metrics, 3 runs, 200 permutations and resamples.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from lmrec.bench import tables
from lmrec.bench.registry import Benchmark, Context, Result, register

TARGET_S = 60.0
QUICK = {"users": 2000, "metrics": 5, "runs": 3, "permutations": 200, "resamples": 200, "repeats": 1}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run compare`."""
    parser.add_argument("--users", type=int, default=138_000, help="users per run (138,000)")
    parser.add_argument("--metrics", type=int, default=20, help="metrics per run (20)")
    parser.add_argument("--runs", type=int, default=10, help="runs, the first being the baseline (10)")
    parser.add_argument("--permutations", type=int, default=1000, help="sign flips per test (1,000)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap samples per interval (1,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes of each phase, the median kept (3)")
    parser.add_argument("--seed", type=int, default=0)


def synthetic_runs(users: int, metrics: int, runs: int, seed: int) -> list[Any]:
    """Per-user values of `runs` runs on the same users: a shared user difficulty plus a run effect plus noise,
    clipped to [0, 1], zero where the user's item is missed, rounded (ties), metric 0 undefined for 5 % of users."""
    import numpy as np

    rng = np.random.default_rng(seed)
    difficulty = rng.beta(0.5, 1.5, (users, metrics))
    out = []
    for run in range(runs):
        values = np.clip(difficulty + 0.004 * run + rng.normal(0.0, 0.08, (users, metrics)), 0.0, 1.0)
        values[rng.random((users, metrics)) < 0.4] = 0.0
        values = np.round(values, 4)
        values[: users // 20, 0] = np.nan
        out.append(values)
    return out


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the small shape): its figures, options and facts, for the record."""
    import numpy as np
    import scipy
    import statsmodels
    from scipy import stats

    from lmrec.bench.record import usable_cores
    from lmrec.bench.timing import alternate, stopwatch
    from lmrec.compare.multiple import adjust_pvalues
    from lmrec.compare.statistics import against_baseline, mean_intervals

    shape = dict(QUICK) if ctx.quick else {k: getattr(args, k) for k in QUICK}
    users, metrics, n_runs = shape["users"], shape["metrics"], shape["runs"]
    began = time.perf_counter()
    runs = synthetic_runs(users, metrics, n_runs, args.seed)
    generate_s = time.perf_counter() - began
    options = {"permutations": shape["permutations"], "resamples": shape["resamples"], "seed": args.seed}
    held: dict[str, Any] = {}

    def intervals(data: list[Any]) -> Any:
        return mean_intervals(np.hstack(data), resamples=shape["resamples"], seed=args.seed)

    def comparisons(data: list[Any]) -> Any:
        held["table"] = against_baseline(data[0], data[1:], **options)
        return held["table"]

    def correction() -> Any:
        return [
            adjust_pvalues(np.stack([getattr(r, name) for r in held["table"]]))
            for name in ("t_pvalue", "wilcoxon_pvalue", "permutation_pvalue")
        ]

    def sign_flips(data: list[Any]) -> Any:
        return against_baseline(data[0], data[1:], tests=("permutation",), **{**options, "resamples": 0})

    small = [r[:2000] for r in runs]
    phases = {
        "intervals": lambda: intervals(runs),
        "comparisons": lambda: comparisons(runs),
        "correction": correction,
        "sign_flips_only": lambda: sign_flips(runs),
    }
    warmup = {
        "intervals": lambda: intervals(small),
        "comparisons": lambda: comparisons(small),
        "correction": correction,
        "sign_flips_only": lambda: sign_flips(small),
    }
    measured = alternate(phases, shape["repeats"], warmup=warmup, report=ctx.log)
    total_s = sum(measured.timings[name].median for name in ("intervals", "comparisons", "correction"))
    diffs = runs[1][:, 1] - runs[0][:, 1]
    scipy_s, scipy_result = stopwatch(
        lambda: stats.permutation_test(
            (diffs,),
            lambda x, axis: np.mean(x, axis=axis),
            permutation_type="samples",
            n_resamples=shape["permutations"],
            vectorized=True,
            batch=50,
            rng=args.seed,
        )
    )
    columns = (n_runs - 1) * metrics
    table = held["table"]
    pvalues = np.concatenate([np.r_[r.t_pvalue, r.wilcoxon_pvalue, r.permutation_pvalue] for r in table])
    ctx.log(f"total {total_s:.2f} s for a {n_runs}-run table ({total_s / TARGET_S:.2f} of the {TARGET_S:.0f} s target)")
    checks = {"p_values_in_unit_interval": bool(((pvalues >= 0) & (pvalues <= 1)).all())}
    if not ctx.quick:
        checks["within_target"] = total_s <= TARGET_S
    return {
        "figures": {
            "users": users,
            "metrics": metrics,
            "runs": n_runs,
            "comparisons": n_runs - 1,
            "columns_compared": columns,
            "generate_s": generate_s,
            "phases": {name: timing.summary() for name, timing in measured.timings.items()},
            "total_s": total_s,
            "target_s": TARGET_S,
            "ratio_to_target": total_s / TARGET_S,
            "scipy_permutation_one_column_s": scipy_s,
            "scipy_permutation_all_s": scipy_s * columns,
            "scipy_over_ours_sign_flips": scipy_s * columns / measured.timings["sign_flips_only"].median,
            "scipy_permutation_pvalue_column_1": float(scipy_result.pvalue),
            "our_permutation_pvalue_column_1": float(table[0].permutation_pvalue[1]),
        },
        "options": {**shape, "seed": args.seed, "tests": ["t", "wilcoxon", "permutation"], "correction": "holm"},
        "facts": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
            "usable_cores": usable_cores(),
        },
        "reference": {"name": "scipy.stats.permutation_test", "version": scipy.__version__},
        "checks": checks,
        "notes": "scipy_permutation_all_s is extrapolated from one column (columns x its time), not run.",
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        f = r["figures"]
        phases = f.get("phases", {})
        rows.append(
            [
                tables.run_cell(r),
                f"{tables.cell(f.get('runs'))} × {tables.cell(f.get('users'))} × {tables.cell(f.get('metrics'))}",
                tables.cell(r.get("options", {}).get("permutations")),
                tables.cell(phases.get("intervals", {}).get("median_s"), ".2f"),
                tables.cell(phases.get("comparisons", {}).get("median_s"), ".2f"),
                tables.cell(f.get("total_s"), ".2f"),
                tables.ratio(f.get("ratio_to_target")),
                tables.cell(phases.get("sign_flips_only", {}).get("median_s"), ".2f"),
                tables.cell(f.get("scipy_permutation_all_s"), ".1f"),
            ]
        )
    header = [
        "run",
        "runs × users × metrics",
        "permutations",
        "intervals s",
        "comparisons s",
        "total s",
        "of 60 s",
        "sign flips s",
        "scipy perm. s (extrap.)",
    ]
    return tables.table(header, rows)


register(
    Benchmark(
        name="compare",
        description="Comparison statistics: paired tests, sign flips, bootstrap intervals of a 10-run table vs 60 s",
        run=run,
        add_arguments=add_arguments,
        table=table,
        module=__name__,
    )
)
