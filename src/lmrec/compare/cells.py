"""What each cell of a comparison table says, worked out once for every format (markdown, LaTeX, plots).

The report reads only `Comparison.as_dict()`. A configuration's value is its mean over seeds ± the std over seeds
with the t-interval of that mean; with one seed there is no seed-to-seed spread to show, so the value is the mean
over users with its bootstrap interval. The change against the reference (the baseline, or the first configuration
when every pair is compared) is relative: with one seed the bootstrap interval of the relative change over users;
with several, the seed-level mean difference and its t-interval divided by the reference's mean over seeds (the
reference's mean taken as fixed), so the change and the means shown beside it agree.

"Better" is direction-aware: for a metric where lower is better (`higher_is_better` false) a significant decrease
is an improvement, and the best value is the lowest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TEST_NAMES = {"wilcoxon": "Wilcoxon signed-rank test", "t": "paired t-test", "permutation": "paired permutation test"}
CORRECTION_NAMES = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "Benjamini-Hochberg",
                    "fdr_bh": "Benjamini-Hochberg"}  # fmt: skip
#: Marks: significantly better / worse than the reference after correction, per seed; seed-level test significant.
BETTER, WORSE, SEED_LEVEL = "†", "▽", "*"
DASH = "–"


def number(value: Any) -> float:
    """`value` as a float; None and non-numbers as NaN (the JSON of a comparison writes NaN as null)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def finite(value: Any) -> bool:
    return math.isfinite(number(value))


@dataclass
class Cell:
    """One configuration on one metric, against the reference."""

    label: str
    seeds: int
    mean: float
    std: float
    low: float
    high: float
    reference: bool = False
    best: bool = False
    relative: float = math.nan
    relative_low: float = math.nan
    relative_high: float = math.nan
    p_corrected: tuple[float, ...] = ()  #: the per-seed test's corrected p, one per compared seed
    better: int = 0  #: seeds in which the configuration is significantly better than the reference
    worse: int = 0  #: seeds in which it is significantly worse
    compared: int = 0  #: seeds compared with the reference
    seed_p: float = math.nan  #: the seed-level paired t-test's corrected p (NaN with one seed)
    seed_significant: bool = False  #: the seed-level test rejects equality (the direction is the change's sign)
    wins: int = 0
    ties: int = 0
    losses: int = 0

    def mark(self, compact: bool = False) -> str:
        """`†2/3` (significantly better in 2 of 3 seeds), `▽1/3` (worse), `*` (the seed-level test rejects); with
        one seed the count is left out. Empty when nothing is significant."""
        parts = []
        for sign, count in ((BETTER, self.better), (WORSE, self.worse)):
            if count:
                parts.append(sign if self.compared == 1 and not compact else f"{sign}{count}/{self.compared}")
        if self.seed_significant:
            parts.append(SEED_LEVEL)
        return "".join(parts)


def options(comparison: dict[str, Any]) -> dict[str, Any]:
    return comparison.get("options") or {}


def reference_label(comparison: dict[str, Any]) -> str | None:
    """The configuration the table compares the others with: the baseline's, else the first pair's `a`."""
    pairs = comparison.get("pairs") or []
    if pairs:
        return str(pairs[0]["a"])
    configurations = comparison.get("configurations") or []
    return str(configurations[0]["label"]) if configurations else None


def role(comparison: dict[str, Any]) -> str:
    """What the reference is called: the baseline the user named, or the reference of an all-pairs comparison."""
    return "baseline" if options(comparison).get("baseline") is not None else "reference"


def top_metrics(comparison: dict[str, Any]) -> list[str]:
    """The metrics asked for (not their bucket columns)."""
    return [m for m in comparison["metrics"] if "/" not in m]


def bucket_groups(comparison: dict[str, Any]) -> dict[str, list[str]]:
    """Base metric -> its bucket columns in the comparison's order (`ndcg@10` -> [`users_q1/ndcg@10`, ...])."""
    groups: dict[str, list[str]] = {}
    for column in comparison["metrics"]:
        if "/" in column:
            groups.setdefault(column.split("/", 1)[1], []).append(column)
    return groups


def higher_is_better(comparison: dict[str, Any], metric: str) -> bool:
    return bool((comparison.get("higher_is_better") or {}).get(metric, True))


def find_pair(comparison: dict[str, Any], a: str, b: str) -> dict[str, Any] | None:
    return next((p for p in comparison.get("pairs") or [] if p["a"] == a and p["b"] == b), None)


def value(configuration: dict[str, Any], metric: str) -> tuple[float, float, float, float]:
    """(mean, std, low, high): over seeds with the t-interval, or with one seed the user mean and its bootstrap."""
    if len(configuration["per_seed"]) == 1:
        seed = configuration["per_seed"][0].get(metric) or {}
        return (number(seed.get("mean")), math.nan, number(seed.get("bootstrap_low")),
                number(seed.get("bootstrap_high")))  # fmt: skip
    over = configuration["over_seeds"].get(metric) or {}
    return number(over.get("mean")), number(over.get("std")), number(over.get("t_low")), number(over.get("t_high"))


def cells(comparison: dict[str, Any], metric: str) -> list[Cell]:
    """One cell per configuration, in the comparison's order, with the best flagged (ties all flagged)."""
    reference = reference_label(comparison)
    by_label = {c["label"]: c for c in comparison["configurations"]}
    out = []
    for configuration in comparison["configurations"]:
        mean, std, low, high = value(configuration, metric)
        cell = Cell(configuration["label"], len(configuration["seeds"]), mean, std, low, high)
        cell.reference = configuration["label"] == reference
        pair = None if cell.reference else find_pair(comparison, str(reference), configuration["label"])
        if pair is not None:
            fill_pair(cell, pair, metric, higher_is_better(comparison, metric), value(by_label[pair["a"]], metric)[0])
        out.append(cell)
    means = [c.mean if higher_is_better(comparison, metric) else -c.mean for c in out if finite(c.mean)]
    best = max(means, default=math.nan)
    for cell in out:
        cell.best = finite(cell.mean) and (cell.mean if higher_is_better(comparison, metric) else -cell.mean) == best
    return out


def fill_pair(cell: Cell, pair: dict[str, Any], metric: str, higher: bool, reference_mean: float) -> Cell:
    """The pair's figures on `metric` in `cell`: relative change, corrected p-values, marks, wins/ties/losses."""
    sign = 1.0 if higher else -1.0
    per_seed = [s[metric] for s in pair["per_seed"] if isinstance(s.get(metric), dict)]
    cell.compared = len(per_seed)
    cell.p_corrected = tuple(number(s.get("p_corrected")) for s in per_seed)
    for s in per_seed:
        if s.get("significant"):
            improved = sign * number(s.get("mean_diff")) > 0
            cell.better += int(improved)
            cell.worse += int(not improved)
        cell.wins += _count(s, "wins")
        cell.ties += _count(s, "ties")
        cell.losses += _count(s, "losses")
    if len(per_seed) == 1:
        only = per_seed[0]
        cell.relative = number(only.get("relative_change"))
        cell.relative_low, cell.relative_high = number(only.get("relative_low")), number(only.get("relative_high"))
    elif per_seed:
        over = pair["over_seeds"].get(metric) or {}
        scale = reference_mean if finite(reference_mean) and reference_mean != 0 else math.nan
        diff = number(over.get("diff_mean"))
        cell.relative = 0.0 if diff == 0 else diff / scale
        cell.relative_low = number(over.get("diff_low")) / scale
        cell.relative_high = number(over.get("diff_high")) / scale
        cell.seed_p = number(over.get("p_corrected"))
        cell.seed_significant = bool(over.get("significant"))
    return cell


def _count(figures: dict[str, Any], key: str) -> int:
    return int(number(figures.get(key))) if finite(figures.get(key)) else 0


def family_size(comparison: dict[str, Any]) -> tuple[int, int]:
    """How many per-seed tests and seed-level tests the corrections counted (defined p-values only)."""
    users = seeds = 0
    for pair in comparison.get("pairs") or []:
        users += sum(finite(v.get("p")) for s in pair["per_seed"] for v in s.values() if isinstance(v, dict))
        seeds += sum(finite(v.get("t_pvalue")) for v in pair["over_seeds"].values())
    return users, seeds


def all_seeds(comparison: dict[str, Any]) -> list[Any]:
    return sorted({s for c in comparison["configurations"] for s in c["seeds"]}, key=lambda s: (s is None, str(s)))


# Formatting shared by the text formats.


def fmt_value(value: float) -> str:
    if not finite(value):
        return DASH
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"


def fmt_percent(value: float, signed: bool = True) -> str:
    if not finite(value):
        return DASH
    return f"{100 * value:+.1f} %" if signed else f"{100 * value:.1f} %"


def fmt_p(value: float) -> str:
    """p-values as PyTerrier shows them: three decimals, or scientific notation below 0.001."""
    if not finite(value):
        return DASH
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def fmt_ps(values: tuple[float, ...], shown: int = 5) -> str:
    """One corrected p per seed; past `shown` seeds the largest, which bounds them all."""
    if not values:
        return DASH
    if len(values) <= shown:
        return ", ".join(fmt_p(p) for p in values)
    defined = [p for p in values if finite(p)]
    return f"≤ {fmt_p(max(defined))} ({len(values)} seeds)" if defined else DASH


def fmt_interval(low: float, high: float, percent: bool = False) -> str:
    if not (finite(low) and finite(high)):
        return DASH
    if percent:
        return f"[{100 * low:+.1f}, {100 * high:+.1f}] %"
    return f"[{fmt_value(low)}, {fmt_value(high)}]"


def fmt_count(value: Any) -> str:
    if not finite(value):
        return DASH
    return f"{number(value):,.0f}"


def fmt_seconds(value: Any) -> str:
    if not finite(value):
        return DASH
    return f"{number(value):.3g}" if number(value) < 1000 else f"{number(value):,.0f}"
