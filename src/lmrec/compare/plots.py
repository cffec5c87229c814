"""A comparison's plots (PNG, matplotlib without a display): each metric with its intervals per configuration,
the bucket columns as grouped bars, and cost against accuracy with the Pareto front.

Why these three: the interval plot shows what the table's ± hides (whether intervals overlap, how the seeds
scatter); the bucket bars show where a model gains (inactive users, cold items); the cost plot shows which
configurations are worth their cost (`lmrec.compare.pareto`: no other is both cheaper and at least as good).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmrec.atomic import atomic_path
from lmrec.compare import cells as C
from lmrec.compare.pareto import pareto_front

#: Costs the cost plot puts on its x axes, where any configuration has a value: key -> axis title.
COSTS = {"train_seconds": "training seconds", "params_total": "parameters", "encode_seconds": "encoding seconds"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: a sweep or a CLI runs without a display
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(figure)
    return path


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def plot_metrics(comparison: dict[str, Any], path: Path) -> Path | None:
    """One panel per metric: each configuration's value and interval (horizontal), its seeds' means as dots."""
    metrics = C.top_metrics(comparison)
    configurations = comparison["configurations"]
    if not metrics or not configurations:
        return None
    plt = _pyplot()
    height = 0.5 + 0.45 * len(configurations)
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), height + 0.8), squeeze=False,
                                layout="constrained")  # fmt: skip
    labels = [_short(c["label"]) for c in configurations]
    for axis, metric in zip(axes[0], metrics, strict=True):
        for y, cell in enumerate(C.cells(comparison, metric)):
            colour = "tab:grey" if cell.reference else "tab:blue"
            if C.finite(cell.low) and C.finite(cell.high):
                axis.plot([cell.low, cell.high], [y, y], color=colour, linewidth=2)
            axis.plot([cell.mean], [y], "o", color=colour)
            seeds = [C.number((s.get(metric) or {}).get("mean")) for s in configurations[y]["per_seed"]]
            if len(seeds) > 1:
                axis.plot(seeds, [y + 0.15] * len(seeds), ".", color="black", alpha=0.5, markersize=4)
            if cell.mark():
                axis.annotate(cell.mark(compact=True), (cell.mean, y), textcoords="offset points", xytext=(0, 6),
                              ha="center", fontsize=8)  # fmt: skip
        direction = "higher" if C.higher_is_better(comparison, metric) else "lower"
        axis.set_title(f"{metric} ({direction} is better)", fontsize=10)
        axis.set_yticks(range(len(configurations)), labels if axis is axes[0][0] else [""] * len(labels))
        axis.set_ylim(-0.6, len(configurations) - 0.4)
        axis.invert_yaxis()
        axis.grid(axis="x", alpha=0.3)
        axis.xaxis.set_major_locator(plt.MaxNLocator(4))
        axis.set_xlabel("mean and interval (dots: the seeds)", fontsize=8)
    return _save(figure, path)


def plot_buckets(comparison: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars per bucket, one bar per configuration, with its interval; None without bucket columns."""
    groups = C.bucket_groups(comparison)
    if not groups:
        return None
    plt = _pyplot()
    configurations = comparison["configurations"]
    width = 0.8 / len(configurations)
    widest = max(len(columns) for columns in groups.values())
    figure, axes = plt.subplots(1, len(groups), figsize=(max(4.0, 1.2 * widest) * len(groups), 3.8), squeeze=False)
    for axis, (metric, columns) in zip(axes[0], groups.items(), strict=True):
        for j, configuration in enumerate(configurations):
            values = [C.value(configuration, column) for column in columns]
            means = [v[0] for v in values]
            errors = [[max(v[0] - v[2], 0) if C.finite(v[2]) else 0 for v in values],
                      [max(v[3] - v[0], 0) if C.finite(v[3]) else 0 for v in values]]  # fmt: skip
            x = [i + (j - (len(configurations) - 1) / 2) * width for i in range(len(columns))]
            axis.bar(x, means, width, yerr=errors, capsize=2, label=_short(configuration["label"], 30))
        axis.set_xticks(range(len(columns)), [c.split("/", 1)[0] for c in columns], rotation=30, ha="right")
        axis.set_title(f"{metric} by bucket", fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(figure, path)


def plot_cost(comparison: dict[str, Any], path: Path) -> Path | None:
    """The first metric against each cost the runs recorded, the Pareto front as a line; None without a cost."""
    metrics = C.top_metrics(comparison)
    configurations = comparison["configurations"]
    # A cost only two or more configurations recorded: one point says nothing about a trade-off.
    costs = [k for k in COSTS if sum(C.finite((c.get("cost") or {}).get(k)) for c in configurations) >= 2]
    if not metrics or not costs:
        return None
    metric, higher = metrics[0], C.higher_is_better(comparison, metrics[0])
    accuracy = [C.value(c, metric)[0] for c in configurations]
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(costs), figsize=(5.0 * len(costs), 4.0), squeeze=False, layout="constrained")
    for axis, cost_key in zip(axes[0], costs, strict=True):
        cost = [C.number((c.get("cost") or {}).get(cost_key)) for c in configurations]
        front = pareto_front(cost, accuracy, higher_is_better=higher)
        on_front = sorted((cost[i], accuracy[i]) for i in range(len(cost)) if front[i])
        if on_front:
            axis.step(*zip(*on_front, strict=True), where="post", color="tab:red", alpha=0.6, label="Pareto front")
        for i, configuration in enumerate(configurations):
            if C.finite(cost[i]) and C.finite(accuracy[i]):
                axis.plot([cost[i]], [accuracy[i]], "o", color="tab:red" if front[i] else "tab:blue")
                # the label's last override names the configuration inside a sweep (`item_tower=hybrid`)
                name = _short(configuration["label"].split("/")[-1], 30)
                axis.annotate(name, (cost[i], accuracy[i]), fontsize=7, textcoords="offset points", xytext=(4, 4),
                              ha="right" if cost[i] == max(c for c in cost if C.finite(c)) else "left")  # fmt: skip
        positive = [c for c in cost if C.finite(c) and c > 0]
        if positive and max(positive) / min(positive) > 100:
            axis.set_xscale("log")
        axis.margins(0.2)
        axis.set_xlabel(COSTS[cost_key])
        axis.set_ylabel(f"{metric} ({'higher' if higher else 'lower'} is better)")
        axis.grid(alpha=0.3)
        if on_front:
            axis.legend(fontsize=8, loc="best")
    return _save(figure, path)


def draw_all(comparison: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Every plot that has something to draw, in `folder`: key -> path."""
    folder = Path(folder)
    drawn = {"metrics_plot": plot_metrics(comparison, folder / "comparison_metrics.png"),
             "buckets_plot": plot_buckets(comparison, folder / "comparison_buckets.png"),
             "cost_plot": plot_cost(comparison, folder / "comparison_cost.png")}  # fmt: skip
    for key, name in (("buckets_plot", "comparison_buckets.png"), ("cost_plot", "comparison_cost.png")):
        if drawn[key] is None:
            (folder / name).unlink(missing_ok=True)  # a stale plot of an earlier report in the same folder
    return {key: path for key, path in drawn.items() if path is not None}
