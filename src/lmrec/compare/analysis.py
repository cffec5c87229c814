"""A comparison table, computed: every configuration's metrics with intervals, and each one against the baseline.

Per configuration and metric: the mean over users of each seed with its bootstrap and t intervals, and over seeds
the mean ± std with its t-interval. Per pair (a configuration against the baseline, or every pair): for each seed,
the paired tests on the users both runs evaluated (aligned by the dataset's ids), the relative change with its
bootstrap interval, Cohen's d_z and wins / ties / losses; over seeds, the paired t-test of the seed means. The
p-values of the chosen test are corrected over the whole table (every pair, metric and seed: one family; the
seed-level tests form a second family), Holm by default. Every figure lands in plain dicts and lists
(`Comparison.as_dict`), which the report renders and JSON stores.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lmrec.compare.multiple import adjust_pvalues
from lmrec.compare.runs import Configuration, Run, check_pairable, group_configurations, pick
from lmrec.compare.seeds import compare_seeds, summarize_seeds
from lmrec.compare.statistics import mean_intervals
from lmrec.errors import ConfigError

#: Columns of a per-user table that identify a row rather than measure it.
KEY_COLUMNS = ("user_id", "item_id", "impression_id")
TESTS = {"t": "t_pvalue", "wilcoxon": "wilcoxon_pvalue", "permutation": "permutation_pvalue"}


@dataclass
class Options:
    """How a comparison is computed (the CLI's options)."""

    baseline: str | None = None
    metrics: Sequence[str] = ()
    split: str = "test"
    test: str = "wilcoxon"
    correction: str = "holm"
    alpha: float = 0.05
    permutations: int = 1000
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def check(self) -> None:
        if self.test not in TESTS:
            raise ConfigError(f"test={self.test!r}; expected one of {', '.join(TESTS)}")
        if not 0 < self.alpha < 1 or not 0 < self.confidence < 1:
            raise ConfigError(f"alpha={self.alpha}, confidence={self.confidence}; expected numbers in (0, 1)")


@dataclass
class Comparison:
    """Everything the report shows; plain Python values (NaN for undefined)."""

    options: dict[str, Any]
    metrics: list[str]
    higher_is_better: dict[str, bool]
    configurations: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _values(run: Run, split: str, metrics: Sequence[str]) -> pd.DataFrame:
    table = run.per_user(split)
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise ConfigError(f"{run.folder}/per_user/{split}.parquet has no column {missing[0]!r}; it has "
                          f"{', '.join(c for c in table.columns if c not in KEY_COLUMNS)}")  # fmt: skip
    keys = [k for k in KEY_COLUMNS if k in table.columns]
    return table.set_index(keys)[list(metrics)]


def default_metrics(run: Run, split: str) -> list[str]:
    """The run's monitored metric and, for ranking tasks, recall at the same cut-off."""
    monitor = str(run.info.get("monitor") or "").split("/", 1)[-1]
    columns = [c for c in run.per_user(split).columns if c not in KEY_COLUMNS]
    chosen = [monitor] if monitor in columns else columns[:1]
    if monitor == "rmse":
        chosen = ["squared_error", "mae"]
    if "@" in monitor and (recall := "recall@" + monitor.split("@")[1]) in columns and recall not in chosen:
        chosen.append(recall)
    return chosen


def bucket_metrics(runs: Sequence[Run], split: str, metrics: Sequence[str]) -> list[str]:
    """The bucket columns of the chosen metrics that every run wrote (`users_q1/ndcg@10`, `cold/ndcg@10`, ...), in
    the first run's order. A column only some runs have (a reranker's `candidates20/ndcg@10`) cannot be paired,
    and a reranker's `retriever/...` columns repeat its retriever's values, which that run's own columns hold."""
    shared = set.intersection(*(set(run.per_user(split).columns) for run in runs))
    return [
        c for c in runs[0].per_user(split).columns
        if c in shared and "/" in c and c.split("/", 1)[1] in metrics and not c.startswith(("sampled", "retriever/"))
    ]  # fmt: skip


def _lower_is_better(run: Run, metric: str) -> bool:
    name = metric.rsplit("/", 1)[-1].split("@")[0]
    return name in ("rmse", "mae", "mse", "squared_error", "loss")


def compare_runs(runs: Sequence[Run], options: Options) -> Comparison:
    """The comparison of `runs` (grouped into configurations by everything but their seed)."""
    options.check()
    configurations = group_configurations(runs)
    first = next(iter(configurations[0].runs.values()))
    metrics = list(options.metrics) or default_metrics(first, options.split)
    every_run = [run for configuration in configurations for run in configuration.runs.values()]
    columns = [*metrics, *bucket_metrics(every_run, options.split, metrics)]
    directions = {m: not _lower_is_better(first, m) for m in columns}
    result = Comparison(asdict(options), columns, directions)
    result.configurations = [_summarize(c, columns, options) for c in configurations]
    if len(configurations) > 1:
        if options.baseline is not None:
            base = pick(configurations, options.baseline)
            pairs = [(base, c) for c in configurations if c is not base]
        else:
            pairs = list(itertools.combinations(configurations, 2))
        result.pairs = [_compare(a, b, columns, directions, options) for a, b in pairs]
        _correct(result.pairs, options)
    return result


def _summarize(configuration: Configuration, columns: list[str], options: Options) -> dict[str, Any]:
    """Per seed: mean with intervals; over seeds: mean ± std with its interval; and the mean cost."""
    seeds, per_seed = configuration.seeds, []
    for seed in seeds:
        run = configuration.runs[seed]
        intervals = mean_intervals(
            _values(run, options.split, columns).to_numpy(np.float64),
            confidence=options.confidence,
            resamples=options.resamples,
            seed=options.seed,
        )
        per_seed.append({"seed": seed, "folder": str(run.folder), **_by_column(intervals, columns)})
    means = np.array([[s[c]["mean"] for c in columns] for s in per_seed])
    over_seeds = summarize_seeds(means, confidence=options.confidence)
    costs = [configuration.runs[s].cost for s in seeds]
    cost = {k: _mean([c[k] for c in costs]) for k in costs[0] if k != "device"}
    cost["device"] = costs[0].get("device")
    return {"label": configuration.label, "seeds": seeds, "per_seed": per_seed,
            "over_seeds": _by_column(over_seeds, columns), "cost": cost}  # fmt: skip


def _compare(a: Configuration, b: Configuration, columns: list[str], directions: dict[str, bool],
             options: Options) -> dict[str, Any]:  # fmt: skip
    """B against A: per common seed the paired tests on the users both evaluated, then over the seeds' means."""
    common = [s for s in a.seeds if s in b.runs]
    if not common:
        raise ConfigError(f"{a.label!r} and {b.label!r} share no seed: their runs were split differently")
    pairs = []
    for seed in common:
        run_a, run_b = a.runs[seed], b.runs[seed]
        check_pairable(run_a, run_b)
        left, right = _values(run_a, options.split, columns), _values(run_b, options.split, columns)
        joined = left.add_suffix("\0a").join(right.add_suffix("\0b"), how="inner")  # the users both evaluated
        pairs.append((joined[[f"{c}\0a" for c in columns]].to_numpy(np.float64),
                      joined[[f"{c}\0b" for c in columns]].to_numpy(np.float64)))  # fmt: skip
    seeds = compare_seeds(
        pairs,
        confidence=options.confidence,
        permutations=options.permutations,
        resamples=options.resamples,
        seed=options.seed,
        higher_is_better=[directions[c] for c in columns],
    )
    per_seed = [{"seed": s, **_by_column(t, columns)} for s, t in zip(common, seeds.per_seed, strict=True)]
    over = {c: {"t_statistic": float(seeds.t_statistic[j]), "t_pvalue": float(seeds.t_pvalue[j]),
                "diff_mean": float(seeds.diff.mean[j]), "diff_low": float(seeds.diff.t_low[j]),
                "diff_high": float(seeds.diff.t_high[j])} for j, c in enumerate(columns)}  # fmt: skip
    return {"a": a.label, "b": b.label, "seeds": common, "per_seed": per_seed, "over_seeds": over}


def _correct(pairs: list[dict[str, Any]], options: Options) -> None:
    """Corrected p-values in place: the chosen test's over every pair, metric and seed; the seed-level tests apart."""
    key = TESTS[options.test]
    cells = [(p, s, c) for p in pairs for s in p["per_seed"] for c in s if isinstance(s[c], dict)]
    correction = adjust_pvalues([s[c][key] for _, s, c in cells], options.correction, options.alpha)
    for (_, s, c), adjusted, reject in zip(cells, correction.adjusted, correction.reject, strict=True):
        s[c].update(p=s[c][key], p_corrected=float(adjusted), significant=bool(reject))
    seeds = [(p, c) for p in pairs for c in p["over_seeds"]]
    over = adjust_pvalues([p["over_seeds"][c]["t_pvalue"] for p, c in seeds], options.correction, options.alpha)
    for (p, c), adjusted, reject in zip(seeds, over.adjusted, over.reject, strict=True):
        p["over_seeds"][c].update(p_corrected=float(adjusted), significant=bool(reject))


def _by_column(result: Any, columns: list[str]) -> dict[str, dict[str, Any]]:
    return {c: result.row(j) for j, c in enumerate(columns)}


def _mean(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return float(np.mean(numbers)) if numbers else None
