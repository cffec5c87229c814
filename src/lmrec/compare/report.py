"""A comparison as a person reads it: markdown tables, and every format of the report written into one folder.

The markdown is what `lmrec-compare` prints and a sweep's `compare` node ends with: a header naming the test, the
correction, alpha, the resampling and the seeds; then per metric one table (each configuration's value with its
interval, its relative change against the reference with its interval, the corrected p-values beside it as
PyTerrier prints them, a significance mark after correction as ranx prints them, wins / ties / losses summed over
seeds); the cost of each configuration; the bucket columns when the runs wrote some. `write_report` adds the
LaTeX table, the JSON (every figure), the CSV (one row per configuration, metric and seed, and per pair) and the
plots, each file written whole or not at all. Logging the report to W&B is `lmrec.sweeps.compare_report`'s
(`log_report_to_wandb`): it reuses the sweep tables' W&B run, and `lmrec.compare` sits below `lmrec.sweeps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmrec.atomic import atomic_path
from lmrec.compare import cells as C
from lmrec.compare import latex, plots, records

#: Cost columns: key in the configuration's `cost` -> (title, formatter).
COST_COLUMNS = {
    "params_total": ("parameters", C.fmt_count),
    "params_trainable": ("trainable", C.fmt_count),
    "encode_seconds": ("encode s", C.fmt_seconds),
    "train_seconds": ("train s", C.fmt_seconds),
    "test_seconds": ("test s", C.fmt_seconds),
    "peak_memory_mb": ("peak memory MB", C.fmt_count),
    "device": ("device", lambda v: C.DASH if v is None else str(v)),
    # What a task reports of its own cost (a reranker's prompts): shown when a configuration has a value.
    "prompt_tokens_per_user": ("prompt tokens/user", C.fmt_count),
    "seconds_per_1k_users": ("s / 1k users", C.fmt_seconds),
    "seconds_per_step": ("s / train step", C.fmt_seconds),
}
#: The task-reported cost columns, left out of a table where no configuration has them.
TASK_COST = ("prompt_tokens_per_user", "seconds_per_1k_users", "seconds_per_step")


def as_dict(comparison: Any) -> dict[str, Any]:
    """A `Comparison` or its `as_dict()` (or the JSON read back), as the dict every renderer reads."""
    return comparison.as_dict() if hasattr(comparison, "as_dict") else comparison


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def header_line(comparison: dict[str, Any]) -> str:
    """What was computed, in one paragraph: test, correction and family sizes, alpha, resampling, seeds, baseline."""
    options = C.options(comparison)
    correction = C.CORRECTION_NAMES.get(options.get("correction"), str(options.get("correction")))
    users, seeds = C.family_size(comparison)
    seeds_list = C.all_seeds(comparison)
    text = (f"{C.TEST_NAMES.get(options.get('test'), options.get('test'))} on per-user values (paired by user, "
            f"seed by seed), {correction} correction over {users} tests")  # fmt: skip
    if not comparison.get("pairs"):
        text = "One configuration: nothing to compare it with"
    if seeds:
        text += f"; seed-level paired t-test over the seeds' means, {correction} over {seeds} tests"
    text += (f"; α = {options.get('alpha')}; {options.get('permutations')} permutations, "
             f"{options.get('resamples')} bootstrap resamples, {_confidence(comparison)} intervals; "
             f"seeds {', '.join(str(s) for s in seeds_list)}; split `{options.get('split')}`")  # fmt: skip
    reference = C.reference_label(comparison)
    if comparison.get("pairs"):
        role = "baseline" if options.get("baseline") is not None else "reference (every pair compared)"
        text += f"; {role} `{reference}`"
    return text + "."


def _confidence(comparison: dict[str, Any]) -> str:
    return f"{100 * float(C.options(comparison).get('confidence') or 0.95):g} %"


def legend(comparison: dict[str, Any]) -> str:
    alpha, role = C.options(comparison).get("alpha"), C.role(comparison)
    several = any(len(c["seeds"]) > 1 for c in comparison["configurations"])
    seeds = "; `k/n`: in k of n seeds" if several else ""
    seed_level = f", {C.SEED_LEVEL} the seed-level test rejects equality" if several else ""
    summed = ", summed over seeds" if several else ""
    return (f"{C.BETTER} significantly better than the {role} after correction (α = {alpha}{seeds}), {C.WORSE} "
            f"significantly worse{seed_level}; better is lower where lower is better. W / T / L: users on which the "
            f"configuration wins, ties, loses against the {role}{summed}. Bold: the best value.")  # fmt: skip


def metric_table(comparison: dict[str, Any], metric: str) -> str:
    """One metric's table: rows are configurations, compared with the reference."""
    several = any(len(c["seeds"]) > 1 for c in comparison["configurations"])
    correction = C.CORRECTION_NAMES.get(C.options(comparison).get("correction"), "corrected")
    interval = f"{_confidence(comparison)} CI" + (" (seeds)" if several else " (bootstrap)")
    header = ["configuration", "seeds", "mean ± std" if several else "mean", interval, f"Δ vs {C.role(comparison)}",
              f"{_confidence(comparison)} CI of Δ", f"p ({correction})", "sig."]  # fmt: skip
    if several:
        header.append(f"seed-level p ({correction})")
    header.append("W / T / L")
    rows = []
    for cell in C.cells(comparison, metric):
        value = C.fmt_value(cell.mean) + (f" ± {C.fmt_value(cell.std)}" if C.finite(cell.std) else "")
        row = [cell.label, str(cell.seeds), f"**{value}**" if cell.best else value, C.fmt_interval(cell.low, cell.high)]
        if cell.reference:
            row += [C.role(comparison), "", "", ""] + ([""] if several else []) + [""]
        else:
            row += [C.fmt_percent(cell.relative), C.fmt_interval(cell.relative_low, cell.relative_high, True),
                    C.fmt_ps(cell.p_corrected), cell.mark()]  # fmt: skip
            row += [C.fmt_p(cell.seed_p)] if several else []
            row.append(f"{cell.wins} / {cell.ties} / {cell.losses}" if cell.compared else C.DASH)
        rows.append(row)
    if not comparison.get("pairs"):  # one configuration: nothing to compare it with
        header, rows = header[:4], [row[:4] for row in rows]
    return table(header, rows)


def other_pairs_table(comparison: dict[str, Any], metric: str) -> str | None:
    """Every pair not against the reference (all-pairs mode): A, B, the change of B over A, p, marks."""
    reference = C.reference_label(comparison)
    pairs = [p for p in comparison.get("pairs") or [] if p["a"] != reference]
    if not pairs:
        return None
    by_label = {c["label"]: c for c in comparison["configurations"]}
    rows = []
    for pair in pairs:
        cell = C.Cell(pair["b"], len(pair["seeds"]), *C.value(by_label[pair["b"]], metric))
        higher = C.higher_is_better(comparison, metric)
        C.fill_pair(cell, pair, metric, higher, C.value(by_label[pair["a"]], metric)[0])
        rows.append([pair["a"], pair["b"], C.fmt_percent(cell.relative),
                     C.fmt_interval(cell.relative_low, cell.relative_high, True),
                     C.fmt_ps(cell.p_corrected), cell.mark(), C.fmt_p(cell.seed_p),
                     f"{cell.wins} / {cell.ties} / {cell.losses}"])  # fmt: skip
    return table(["A", "B", "Δ of B", "CI of Δ", "p", "sig.", "seed-level p", "W / T / L (B)"], rows)


def cost_table(comparison: dict[str, Any]) -> str:
    """Parameters, seconds (encoding, training, test pass), peak memory and device, averaged over seeds."""
    configurations = comparison["configurations"]
    keys = [k for k in COST_COLUMNS
            if k not in TASK_COST or any(c.get("cost", {}).get(k) is not None for c in configurations)]  # fmt: skip
    rows = [[c["label"], *(COST_COLUMNS[k][1](c.get("cost", {}).get(k)) for k in keys)] for c in configurations]
    return table(["configuration", *(COST_COLUMNS[k][0] for k in keys)], rows)


def bucket_table(comparison: dict[str, Any], metric: str, columns: list[str]) -> str:
    """One base metric per bucket: each configuration's value and its change (with marks) against the reference."""
    by_column = {column: {c.label: c for c in C.cells(comparison, column)} for column in columns}
    rows = []
    for configuration in comparison["configurations"]:
        row = [configuration["label"]]
        for column in columns:
            cell = by_column[column][configuration["label"]]
            text = f"**{C.fmt_value(cell.mean)}**" if cell.best else C.fmt_value(cell.mean)
            if not cell.reference and cell.compared:
                text += f" ({C.fmt_percent(cell.relative)}{' ' + cell.mark() if cell.mark() else ''})"
            row.append(text)
        rows.append(row)
    return table(["configuration", *(c.split("/", 1)[0] for c in columns)], rows)


def to_markdown(comparison: Any) -> str:
    """The whole report as markdown (what `lmrec-compare` prints and comparison.md holds)."""
    comparison = as_dict(comparison)
    configurations = comparison["configurations"]
    parts = [f"# Comparison: {len(configurations)} configuration{'s' * (len(configurations) != 1)}\n",
             header_line(comparison) + "\n"]  # fmt: skip
    for metric in C.top_metrics(comparison):
        direction = "higher" if C.higher_is_better(comparison, metric) else "lower"
        parts.append(f"## {metric} ({direction} is better)\n")
        parts.append(metric_table(comparison, metric))
        if (others := other_pairs_table(comparison, metric)) is not None:
            parts.append(f"Every other pair on {metric}:\n\n{others}")
    if comparison.get("pairs"):
        parts.append(legend(comparison) + "\n")
    parts.append("## Cost (mean over seeds)\n")
    parts.append(cost_table(comparison))
    groups = C.bucket_groups(comparison)
    if groups:
        parts.append("## Buckets\n")
        role = C.role(comparison)
        parts.append(f"Each bucket's mean, and in brackets its change against the {role} and its marks.\n")
        for metric, columns in groups.items():
            parts.append(f"### {metric} by bucket\n")
            parts.append(bucket_table(comparison, metric, columns))
    return "\n".join(parts)


def write_report(comparison: Any, folder: Path) -> dict[str, Path]:
    """comparison.{md,tex,json,csv} and the plots in `folder`, each written whole or not at all; returns
    format -> path (`metrics_plot`, `buckets_plot`, `cost_plot` only where there was something to draw)."""
    comparison, folder = as_dict(comparison), Path(folder)
    texts = {"markdown": ("comparison.md", to_markdown(comparison)),
             "latex": ("comparison.tex", latex.to_latex(comparison)),
             "json": ("comparison.json", records.to_json(comparison)),
             "csv": ("comparison.csv", records.to_csv(comparison))}  # fmt: skip
    written: dict[str, Path] = {}
    for key, (name, text) in texts.items():
        with atomic_path(folder / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
        written[key] = folder / name
    for key, path in plots.draw_all(comparison, folder).items():
        written[key] = path
    return written
