"""A Hydra callback that keeps `summary.csv` and `summary.md` in the sweep folder: one row per job.

Each row: job number, overrides, status (COMPLETED, or FAILED with the error), test metrics and output folder.

Why it is built the way it is:
- Hydra's sweepers re-raise a failed job's exception once its batch has run, so `on_multirun_end` never runs
  for a sweep with a failure. The summary is therefore rebuilt after every job (`on_job_end`), which also leaves a
  killed sweep with the rows of the jobs that finished.
- With the joblib or submitit launchers `on_job_end` runs in the job's own process, so nothing can be kept in
  memory: each job writes its row to `<job dir>/job_status.json`, and the summary is rebuilt from those files under
  a lock (jobs finishing at once) and written atomically.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from lmrec.config.secrets import redact_override, redact_text
from lmrec.runs.folder import EVAL_METRICS_FILE, METRICS_FILE
from lmrec.runs.records import write_job_status
from lmrec.runtime.distributed import process_rank
from lmrec.sweeps import run_table

log = logging.getLogger(__name__)

#: lmrec-train writes the first, lmrec-eval (`lmrec-eval -m run=a,b`) the second.
METRICS_FILES = (METRICS_FILE, EVAL_METRICS_FILE)


def job_record(job_return: JobReturn, sweep_dir: Path) -> dict[str, Any]:
    """What the summary shows of one job, from Hydra's JobReturn and the metrics file the job wrote."""
    hydra = job_return.hydra_cfg.hydra
    output_dir = Path(str(hydra.runtime.output_dir))
    error = None
    if job_return.status == JobStatus.FAILED:
        exc = job_return._return_value  # the exception; `return_value` would re-raise it
        error = redact_text(f"{type(exc).__name__}: {exc}")
    metrics = run_table.read_run_metrics(output_dir, METRICS_FILES) or {}
    try:
        shown_dir = str(output_dir.resolve().relative_to(sweep_dir.resolve()))
    except ValueError:
        shown_dir = str(output_dir)
    return {
        "job": int(hydra.job.num),
        "overrides": [redact_override(o) for o in job_return.overrides or []],  # summaries are shared files
        "status": job_return.status.name,
        "error": error,
        "metrics": {k: v for k, v in metrics.items() if run_table.is_number(v)},
        "output_dir": shown_dir,
    }


def metric_columns(records: list[dict[str, Any]]) -> list[str]:
    """Every metric any job wrote, so jobs of different tasks or a failed job still line up in one table."""
    return run_table.metric_columns(name for r in records for name in r["metrics"])


def to_csv(records: list[dict[str, Any]]) -> str:
    """Every job's row with full-precision metrics."""
    rows = [
        {
            **r["metrics"],
            "job": r["job"],
            "overrides": " ".join(r["overrides"]),
            "status": r["status"],
            "error": r["error"] or "",
            "output_dir": r["output_dir"],
        }
        for r in records
    ]
    return run_table.to_csv(rows, ["job", "overrides", "status", "error", *metric_columns(records), "output_dir"])


def to_markdown(records: list[dict[str, Any]], title: str) -> str:
    """Overrides shared by every job are listed once above the table; each row shows what distinguishes its job."""
    metrics = metric_columns(records)
    shared = set.intersection(*(set(r["overrides"]) for r in records)) if len(records) > 1 else set()
    failed = sum(r["status"] == "FAILED" for r in records)
    lines = [f"# Sweep {title}", "", f"{len(records)} jobs: {len(records) - failed} completed, {failed} failed."]
    if shared:
        lines += ["", "Overrides of every job: " + " ".join(f"`{o}`" for o in sorted(shared))]
    rows = []
    for r in records:
        status = r["status"] if not r["error"] else f"{r['status']}: {r['error']}"
        own = " ".join(o for o in r["overrides"] if o not in shared)
        values = {m: f"{r['metrics'][m]:.4f}" if isinstance(r["metrics"].get(m), float) else "" for m in metrics}
        rows.append({**values, "job": str(r["job"]), "overrides": own, "status": status, "output_dir": r["output_dir"]})
    columns = ["job", "overrides", "status", *metrics, "output_dir"]
    lines += ["", run_table.to_markdown(rows, columns, titles={"output_dir": "output dir"}, fmt=str).rstrip("\n")]
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: Path) -> list[dict[str, Any]]:
    """Rebuild summary.csv and summary.md from every job's status file (serialised by a lock in the sweep dir)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / ".summary.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = run_table.status_records(sweep_dir)
        run_table.write_table(sweep_dir, "summary", to_csv(records), to_markdown(records, sweep_dir.name))
    return records


class SweepSummary(Callback):
    """Registered in conf/hydra/default.yaml under `hydra.callbacks`; acts in multiruns only, on rank zero."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or process_rank() != 0:
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        record = job_record(job_return, sweep_dir)
        write_job_status(Path(str(config.hydra.runtime.output_dir)), record)
        records = write_summary(sweep_dir)
        if record["status"] == "FAILED":
            log.error("job %s failed (%s); the sweep goes on", record["job"], record["error"])
        failed = sum(r["status"] == "FAILED" for r in records)
        log.info("sweep summary (%d jobs so far, %d failed): %s", len(records), failed, sweep_dir / "summary.md")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_summary(Path(str(config.hydra.sweep.dir)))
