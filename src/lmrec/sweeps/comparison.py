"""A side-by-side table of a sweep's jobs: quality, trainable parameters, peak memory, time per epoch and per step.

Written by a Hydra callback at the end of a multirun (e.g. `experiment=tuning_comparison`) from the files every
job leaves behind (metrics.json, run.json, .hydra/config.yaml), so it needs no state shared between jobs and
works the same with the local, joblib or SLURM launchers.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lmrec.atomic import atomic_path
from lmrec.runs.folder import CONFIG_FILE, read_config, read_job_status, read_metrics, read_run_info, saved_config
from lmrec.runtime.distributed import process_rank

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


def job_row(job_dir: Path, label_key: str, status: str | None = None) -> dict[str, Any]:
    """One table row from a job folder; a job without results is listed with its status, not skipped."""
    config = read_config(job_dir) or OmegaConf.create()
    label = OmegaConf.select(config, label_key, default=None)
    if status is None:  # the row the sweep summary callback wrote when the job ended
        status = (read_job_status(job_dir) or {}).get("status", "")
    row: dict[str, Any] = {"job": job_dir.name, "label": label, "status": status.lower() or "running"}
    metrics, info = read_metrics(job_dir), read_run_info(job_dir)
    if metrics is None or info is None:
        if row["status"] == "completed":
            row["status"] = "completed (no metrics)"
        return row
    metric = "test/" + str(info.get("monitor", "")).removeprefix("val/")
    params = info.get("params", {})
    row.update(
        status="completed",
        metric=metric,
        value=metrics.get(metric),
        trainable=params.get("trainable"),
        trainable_pct=params.get("trainable_pct"),
        peak_memory_mb=info.get("peak_memory_mb"),
        seconds_per_epoch=info.get("seconds_per_epoch"),
        optimizer_steps=info.get("optimizer_steps"),
        seconds_per_step=info.get("seconds_per_step"),
    )
    return row


def comparison_rows(sweep_dir: Path, label_key: str, known: dict[Path, str] | None = None) -> list[dict[str, Any]]:
    """Rows for every job folder of the sweep; `known` gives statuses the caller already has (job dir -> status)."""
    known = {d.resolve(): s for d, s in (known or {}).items()}
    jobs = [d for d in Path(sweep_dir).iterdir() if d.is_dir() and (d / ".hydra").is_dir()]
    jobs.sort(key=lambda d: (not d.name.isdigit(), int(d.name) if d.name.isdigit() else 0, d.name))
    return [job_row(d, label_key, known.get(d.resolve())) for d in jobs]


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def markdown_table(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_comparison(
    sweep_dir: Path, rows: list[dict[str, Any]], name: str, columns: tuple[str, ...] = COLUMNS
) -> tuple[Path, Path]:
    """`<name>.csv` and `<name>.md` in the sweep folder, each written whole or not at all."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    csv_path, md_path = Path(sweep_dir) / f"{name}.csv", Path(sweep_dir) / f"{name}.md"
    with atomic_path(csv_path) as tmp:
        tmp.write_text(buffer.getvalue())
    with atomic_path(md_path) as tmp:
        tmp.write_text(markdown_table(rows, columns))
    return csv_path, md_path


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
    for config_file in sorted(Path(sweep_dir).glob(f"*/{CONFIG_FILE}")):
        try:
            group = OmegaConf.select(saved_config(config_file.parents[1]), "logger.wandb.group", default=None)
        except Exception:  # an unresolvable interpolation (e.g. hydra:) outside the job: fall back
            group = None
        if group:
            return str(group)
    return sweep_dir.name


class ComparisonTable(Callback):
    """Hydra callback: after the last job, tabulate the sweep (label = the config value that varies)."""

    def __init__(
        self, label: str = "model.tuning.name", name: str = "comparison", wandb_project: str | None = "lmrec"
    ) -> None:
        self.label = label
        self.name = name
        self.wandb_project = wandb_project

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        # Rebuilt after every job: a sweep with a failed job never reaches on_multirun_end, and a killed one
        # keeps the rows of the jobs that finished.
        if process_rank() == 0:
            sweep_dir = Path(config.hydra.sweep.dir)
            this_job = {Path(str(config.hydra.runtime.output_dir)): job_return.status.name}
            write_comparison(sweep_dir, comparison_rows(sweep_dir, self.label, this_job), self.name)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = comparison_rows(sweep_dir, self.label)
        csv_path, md_path = write_comparison(sweep_dir, rows, self.name)
        print(f"{self.name} ({len(rows)} jobs), also in {csv_path}:\n{markdown_table(rows)}")
        if self.wandb_project:
            try:
                log_to_wandb(rows, self.name, self.wandb_project, wandb_group_of(sweep_dir), sweep_dir)
            except Exception as err:  # the table on disk is the result; a W&B hiccup must not hide it
                log.warning("could not log %s to W&B: %s", self.name, err)
