"""A side-by-side table of a sweep's jobs: quality, trainable parameters, peak memory, time per epoch and per step.

One Hydra callback (`ComparisonTable`, registered in conf/hydra/default.yaml) serves every experiment that wants
a table; the experiment asks for one with a top-level `comparison` node in its config:

    comparison: {label: model.name, name: baselines}                       # baselines.csv / baselines.md
    comparison: {label: model.encoder.name_or_path, kind: encoder_scale}   # + encoder size, encoding cost, plot

`label` is the config key whose value tells the jobs apart, `name` the file name (default: the kind), `kind` the
table's columns (`KINDS`). Without the node the callback does nothing, so a plain multirun writes no table. The
table is built from the files every job leaves behind (`lmrec.sweeps.run_table`), so it needs no state shared
between jobs and works the same with the local, joblib or SLURM launchers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lmrec.errors import ConfigError
from lmrec.runtime.distributed import process_rank
from lmrec.sweeps import encoder_scale
from lmrec.sweeps.run_table import Run, first_config_value, sweep_runs, to_csv, to_markdown, write_table

log = logging.getLogger(__name__)

COLUMNS = (
    "job",
    "label",
    "status",
    "metric",
    "value",
    "trainable",
    "trainable_pct",
    "peak_memory_mb",
    "seconds_per_epoch",
    "optimizer_steps",
    "seconds_per_step",
)
#: Columns read from run.json: column -> dotted path in the file.
FACTS = {
    "trainable": "params.trainable",
    "trainable_pct": "params.trainable_pct",
    "peak_memory_mb": "peak_memory_mb",
    "seconds_per_epoch": "seconds_per_epoch",
    "optimizer_steps": "optimizer_steps",
    "seconds_per_step": "seconds_per_step",
}


@dataclass(frozen=True)
class TableKind:
    """What one kind of table shows: its columns, the run.json facts they need, the label key it lists jobs by
    when the experiment names none, and an optional plot of its rows."""

    columns: tuple[str, ...]
    facts: dict[str, str] = field(default_factory=dict)
    label: str = "model.tuning.name"
    plot: Callable[[list[dict[str, Any]], Path], Path | None] | None = None


KINDS = {
    "comparison": TableKind(COLUMNS, FACTS),
    "encoder_scale": TableKind(
        encoder_scale.COLUMNS, {**FACTS, **encoder_scale.FACTS}, "model.encoder.name_or_path", encoder_scale.plot_scale
    ),
}
#: The keys a `comparison` node may hold.
REQUEST_KEYS = ("label", "name", "kind")


def comparison_row(run: Run, label_key: str, facts: dict[str, str] = FACTS) -> dict[str, Any]:
    """One table row; a job without results is listed with its status, not skipped."""
    row: dict[str, Any] = {"job": run.name, "label": run.config_value(label_key), "status": run.outcome.lower()}
    row.update({column: run.fact(path) for column, path in facts.items()})
    if run.finished:
        metric = "test/" + str(run.fact("monitor") or "").removeprefix("val/")
        row.update(metric=metric, value=(run.metrics or {}).get(metric))
    return row


def comparison_rows(
    sweep_dir: Path, label_key: str, known: dict[Path, str] | None = None, facts: dict[str, str] = FACTS
) -> list[dict[str, Any]]:
    """Rows for every job folder of the sweep; `known` gives statuses the caller already has (job dir -> status)."""
    return [comparison_row(run, label_key, facts) for run in sweep_runs(sweep_dir, known)]


def markdown_table(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    """The table as the sweep's console shows it and `<name>.md` holds it."""
    return to_markdown(rows, columns)


def write_comparison(
    sweep_dir: Path, rows: list[dict[str, Any]], name: str, columns: tuple[str, ...] = COLUMNS
) -> tuple[Path, Path]:
    """`<name>.csv` and `<name>.md` in the sweep folder, each written whole or not at all."""
    return write_table(sweep_dir, name, to_csv(rows, columns), markdown_table(rows, columns))


def log_to_wandb(
    rows: list[dict[str, Any]],
    name: str,
    project: str,
    group: str,
    save_dir: Path,
    columns: tuple[str, ...] = COLUMNS,
    images: dict[str, Path] | None = None,
) -> None:
    """The table as one W&B run of the sweep's group (offline without credentials, like every lmrec run)."""
    import wandb

    from lmrec.runtime.loggers import wandb_credentials_available

    offline = os.environ.get("WANDB_MODE") == "offline" or not wandb_credentials_available()
    run = wandb.init(
        project=project,
        group=group,
        job_type="comparison",
        name=name,
        dir=str(save_dir),
        mode="offline" if offline else "online",
        reinit="finish_previous",
    )
    table = wandb.Table(columns=list(columns), data=[[row.get(c) for c in columns] for row in rows])
    run.log({name: table, **{key: wandb.Image(str(path)) for key, path in (images or {}).items()}})
    run.finish()


def wandb_group_of(sweep_dir: Path) -> str:
    """The W&B group the jobs used, so the table lands beside their runs; the sweep folder name otherwise."""
    group = first_config_value(sweep_runs(sweep_dir), "logger.wandb.group")
    return str(group) if group else Path(sweep_dir).name


@dataclass(frozen=True)
class TableRequest:
    """The table an experiment's `comparison` node asks for."""

    label: str
    name: str
    kind: TableKind


def requested_table(config: DictConfig) -> TableRequest | None:
    """The table the config's `comparison` node asks for, or None when it has none (or `comparison: null`)."""
    node = OmegaConf.select(config, "comparison", default=None)
    if node is None:
        return None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"comparison={node!r}; expected a mapping with keys {', '.join(REQUEST_KEYS)}")
    unknown = sorted(str(key) for key in node if key not in REQUEST_KEYS)
    if unknown:
        raise ConfigError(f"comparison.{unknown[0]}: not an option of the comparison table ({', '.join(REQUEST_KEYS)})")
    kind = str(node.get("kind") or "comparison")
    if kind not in KINDS:
        raise ConfigError(f"comparison.kind={kind!r}; expected one of {', '.join(KINDS)}")
    return TableRequest(str(node.get("label") or KINDS[kind].label), str(node.get("name") or kind), KINDS[kind])


def write_requested(
    request: TableRequest, sweep_dir: Path, known: dict[Path, str] | None = None
) -> tuple[list[dict[str, Any]], Path, Path | None]:
    """Rows, the CSV path and the plot (None if the kind draws none, or had nothing to draw), all written."""
    kind = request.kind
    rows = comparison_rows(sweep_dir, request.label, known, kind.facts)
    csv_path, _ = write_comparison(sweep_dir, rows, request.name, kind.columns)
    plot = kind.plot(rows, Path(sweep_dir) / f"{request.name}.png") if kind.plot else None
    return rows, csv_path, plot


class ComparisonTable(Callback):
    """Hydra callback: after every job and after the last, tabulate the sweep its `comparison` node asks for."""

    def __init__(self, wandb_project: str | None = "lmrec") -> None:
        self.wandb_project = wandb_project

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        requested_table(config)  # a mistyped node fails before the first job, not after the last

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        # Rebuilt after every job: a sweep with a failed job never reaches on_multirun_end, and a killed one
        # keeps the rows of the jobs that finished.
        if config.hydra.mode != RunMode.MULTIRUN or process_rank() != 0:
            return
        if (request := requested_table(config)) is not None:
            this_job = {Path(str(config.hydra.runtime.output_dir)): job_return.status.name}
            write_requested(request, Path(str(config.hydra.sweep.dir)), this_job)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if (request := requested_table(config)) is None:
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        rows, csv_path, plot = write_requested(request, sweep_dir)
        columns = request.kind.columns
        print(f"{request.name} ({len(rows)} jobs), also in {csv_path}:\n{markdown_table(rows, columns)}")
        if self.wandb_project:
            try:
                images = {f"{request.name}_plot": plot} if plot else None
                group = wandb_group_of(sweep_dir)
                log_to_wandb(rows, request.name, self.wandb_project, group, sweep_dir, columns, images)
            except Exception as err:  # the table on disk is the result; a W&B hiccup must not hide it
                log.warning("could not log %s to W&B: %s", request.name, err)
