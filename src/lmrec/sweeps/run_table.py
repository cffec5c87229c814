"""Tables of runs: run folders read into rows, rows rendered as CSV and markdown, runs averaged over seeds.

Every table lmrec writes about finished runs (a sweep's `summary.csv`, the comparison and encoder-scale tables,
`lmrec-summarize`) reads run folders here, so they agree on what a folder says: its overrides, whether it finished,
its metrics and run.json facts, and its config values. Folders are read as data through `lmrec.runs.folder`
(a folder may come from someone else), and every cell is escaped the same way, so one odd value cannot break a
table's layout.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lmrec.atomic import atomic_path
from lmrec.config.secrets import redact_override
from lmrec.errors import MissingInputError
from lmrec.runs.folder import (
    JOB_STATUS_FILE,
    METRICS_FILE,
    read_config,
    read_job_status,
    read_metrics,
    read_recorded_overrides,
    read_run_info,
)

#: Overrides that say where a run logs and writes, not what it computes: they do not name a configuration.
HIDDEN_PREFIXES = ("logger=", "hydra.", "paths.")


def natural_key(text: str) -> list[Any]:
    """Numbers compared as numbers, so job 2 comes before job 10 and ndcg@5 before ndcg@10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text))]


def is_number(value: Any) -> bool:
    """Whether a metrics value can be averaged and formatted as a score (True is a flag, not a 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class Run:
    """What one run folder says about its run; `status` is what was recorded (job_status.json, or the caller)."""

    dir: Path
    overrides: list[str] = field(default_factory=list)
    status: str | None = None
    error: str | None = None
    metrics: dict[str, Any] | None = None
    info: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """The folder's name: a sweep job's number."""
        return self.dir.name

    @property
    def finished(self) -> bool:
        """A run that wrote both its metrics and its run.json, whatever its recorded status says."""
        return self.metrics is not None and self.info is not None

    @property
    def outcome(self) -> str:
        """COMPLETED once its results are there; else the recorded status (a COMPLETED run without results is
        `COMPLETED (no metrics)`); else RUNNING: a job that has not ended yet records nothing."""
        if self.finished:
            return "COMPLETED"
        status = (self.status or "").upper() or "RUNNING"
        return "COMPLETED (no metrics)" if status == "COMPLETED" else status

    def fact(self, path: str) -> Any:
        """A value run.json records, by dotted path (`params.trainable`); None when absent."""
        node: Any = self.info or {}
        for key in path.split("."):
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def config_value(self, key: str) -> Any:
        """A value of the run's saved config by dotted key (e.g. the label a comparison lists it by); None when
        the folder has no config or the config no such key."""
        config = read_config(self.dir) or OmegaConf.create()
        return OmegaConf.select(config, key, default=None)


def read_overrides(run_dir: Path) -> list[str]:
    """The run's command-line overrides, secrets redacted (tables are shared files); [] without the file."""
    return [redact_override(o) for o in read_recorded_overrides(run_dir)]


def read_run_metrics(run_dir: Path, names: Sequence[str] = (METRICS_FILE,)) -> dict[str, Any] | None:
    """The first of the metrics files `names` the run wrote (lmrec-train and lmrec-eval name theirs differently)."""
    for name in names:
        if (found := read_metrics(run_dir, name)) is not None:
            return found
    return None


def read_run(run_dir: Path, status: str | None = None, metrics_files: Sequence[str] = (METRICS_FILE,)) -> Run:
    """One run folder; `status` is what the caller knows of a job whose job_status.json is not written yet."""
    recorded = read_job_status(run_dir) or {}
    return Run(
        dir=Path(run_dir),
        overrides=read_overrides(run_dir),
        status=status or recorded.get("status"),
        error=recorded.get("error"),
        metrics=read_run_metrics(run_dir, metrics_files),
        info=read_run_info(run_dir),
    )


def sweep_runs(sweep_dir: Path, known: dict[Path, str] | None = None) -> list[Run]:
    """Every job folder of a sweep (one with `.hydra/`), by job number; `known`: job dir -> status the caller has,
    so a job is listed even if it failed before writing anything."""
    known = {Path(d).resolve(): s for d, s in (known or {}).items()}
    jobs = [d for d in Path(sweep_dir).iterdir() if d.is_dir() and (d / ".hydra").is_dir()]
    jobs.sort(key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name))
    return [read_run(d, known.get(d.resolve())) for d in jobs]


def runs_under(root: Path) -> list[Run]:
    """Every run under `root` (itself included) that wrote metrics.json, in natural path order."""
    root = Path(root)
    if not root.is_dir():
        raise MissingInputError(f"{root} is not a folder of runs (it does not exist)")
    runs = [read_run(p.parent) for p in sorted(root.rglob(METRICS_FILE), key=natural_key)]
    if not runs:
        raise MissingInputError(f"no {METRICS_FILE} under {root}: no finished runs to tabulate")
    return runs


def status_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """The rows the jobs of a sweep recorded when they ended (job_status.json), by job number."""
    records = [read_job_status(path.parent) for path in Path(sweep_dir).rglob(JOB_STATUS_FILE)]
    return sorted((r for r in records if r is not None), key=lambda r: r["job"])


def first_config_value(runs: Iterable[Run], key: str) -> Any:
    """The first value any run's config gives `key`; a config that cannot give it (an interpolation such as
    `hydra:` that resolves only inside the job, a damaged file) is passed over."""
    for run in runs:
        try:
            value = run.config_value(key)
        except Exception:
            value = None
        if value:
            return value
    return None


def metric_columns(names: Iterable[str]) -> list[str]:
    """Test metrics first, then the rest (e.g. the best validation value); numbers in names sorted as numbers."""
    return sorted(set(names), key=lambda n: (not n.startswith("test/"), natural_key(n)))


def format_value(value: Any) -> str:
    """Readable cells: 4 decimals for scores, thousands separators for counts and big values, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|")


def to_markdown(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    titles: dict[str, str] | None = None,
    fmt: Callable[[Any], str] = format_value,
) -> str:
    """A markdown table of `columns` (headed by `titles` where given); a missing value is an empty cell."""
    titles = titles or {}
    lines = ["| " + " | ".join(_cell(titles.get(c, c)) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(fmt(row.get(c))) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV of `columns` (raw values, full precision); keys outside `columns` are left out, missing ones empty."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_table(folder: Path, name: str, csv_text: str, markdown: str) -> tuple[Path, Path]:
    """`<name>.csv` and `<name>.md` in `folder`, each written whole or not at all (a sweep's jobs read them)."""
    csv_path, md_path = Path(folder) / f"{name}.csv", Path(folder) / f"{name}.md"
    with atomic_path(csv_path) as tmp:
        tmp.write_text(csv_text)
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown)
    return csv_path, md_path


@dataclass
class Group:
    """Runs of one configuration: the same overrides except the keys averaged over (e.g. the seed)."""

    name: str
    runs: list[Run] = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        """The metric of every run that has it: a run that lacks it is left out, not counted as zero."""
        return [run.metrics[metric] for run in self.runs if is_number((run.metrics or {}).get(metric))]

    @property
    def trainable(self) -> Any:
        """Trainable parameters, as the group's last run recorded them (one configuration trains one size)."""
        return self.runs[-1].fact("params.trainable")


def group_runs(runs: Iterable[Run], average_over: Sequence[str] = ()) -> list[Group]:
    """Runs grouped by their shown overrides without the `average_over` keys, in the order first seen; a run
    without overrides is a group of its own, named by its folder."""
    groups: dict[str, Group] = {}
    for run in runs:
        shown = [o for o in run.overrides if not o.startswith(HIDDEN_PREFIXES)]
        name = " ".join(o for o in shown if o.split("=", 1)[0] not in average_over) or run.name
        groups.setdefault(name, Group(name)).runs.append(run)
    return list(groups.values())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single run)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _mean_cell(values: Sequence[float]) -> str:
    if not values:
        return ""
    mean, std = mean_std(values)
    return f"{mean:.4f} ± {std:.4f}" if len(values) > 1 else f"{mean:.4f}"


def grouped_markdown(groups: Sequence[Group], metrics: Sequence[str]) -> str:
    """One row per configuration: each metric as mean ± std over its runs, the number of runs, its size."""
    columns = ["run", *metrics, "runs", "trainable params"]
    rows = [{"run": g.name, **{m: _mean_cell(g.values(m)) for m in metrics}} for g in groups]
    for row, group in zip(rows, groups, strict=True):
        row.update({"runs": str(len(group.runs)), "trainable params": str(group.trainable)})  # None: no run.json
    return to_markdown(rows, columns, fmt=str)


def plot_groups(groups: Sequence[Group], metrics: Sequence[str], path: Path) -> Path | None:
    """One panel per metric, one bar per configuration (mean, the standard deviation as error bar); None when no
    run has any of the metrics."""
    present = [m for m in metrics if any(g.values(m) for g in groups)]
    if not present:
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], present, strict=True):
        shown = [g for g in groups if g.values(metric)]
        stats = [mean_std(g.values(metric)) for g in shown]
        labels = ["\n".join(part.split("=", 1)[-1] for part in g.name.split()) for g in shown]
        ax.bar(range(len(shown)), [s[0] for s in stats], yerr=[s[1] for s in stats], capsize=4, color="#4C72B0")
        ax.set_xticks(range(len(shown)), labels, fontsize=7)
        low, high = min(s[0] - s[1] for s in stats), max(s[0] + s[1] for s in stats)
        pad = 0.15 * (high - low + 1e-9)
        ax.set_ylim(max(0.0, low - pad), high + pad)
        ax.set_title(metric + (" (lower is better)" if metric.endswith(("rmse", "mae")) else ""), fontsize=9)
    figure.tight_layout()
    with atomic_path(Path(path)) as tmp:
        figure.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=120)
    plt.close(figure)
    return Path(path)
