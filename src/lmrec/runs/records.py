"""What a finished run writes into its folder: the resolved config, metrics.json and run.json, each atomically."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from lmrec.atomic import atomic_path, write_json_atomic
from lmrec.runs.folder import JOB_STATUS_FILE, METRICS_FILE, RUN_FILE
from lmrec.runtime.loggers import redact_secrets

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from lmrec.model.builders import ModelBuilder


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """Every value resolved (interpolations, env lookups), secrets redacted: what this run actually used."""
    return redact_secrets(OmegaConf.to_container(cfg, resolve=True))


def write_resolved_config(cfg: DictConfig, output_dir: Path) -> None:
    with atomic_path(Path(output_dir) / "config_resolved.yaml") as tmp:
        tmp.write_text(OmegaConf.to_yaml(resolved_config(cfg)))


def task_cost(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The cost figures a task logs itself among a pass's metrics (`<split>/cost/*`, `train/cost/*`: a reranker's
    prompt tokens, ranking seconds per 1,000 users, seconds per training step), for run.json's `task_cost`."""
    return {k: float(v) for k, v in metrics.items() if "/cost/" in k}


def relative_to_run(path: Path, root: Path) -> str:
    """A path inside the run folder is stored relative to it, so the folder can be moved."""
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(Path(path).resolve())


def write_metrics(output_dir: Path, metrics: dict[str, Any]) -> None:
    write_json_atomic(Path(output_dir) / METRICS_FILE, metrics)


def write_run_info(output_dir: Path, info: dict[str, Any]) -> None:
    write_json_atomic(Path(output_dir) / RUN_FILE, info)


def write_eval_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """What `lmrec-eval` found, at the path its `metrics_file` option names."""
    write_json_atomic(Path(path), metrics)


def write_job_status(job_dir: Path, record: dict[str, Any]) -> None:
    write_json_atomic(Path(job_dir) / JOB_STATUS_FILE, record)


def parameter_counts(builder: ModelBuilder, model: pl.LightningModule) -> dict[str, float]:
    """The model's parameters, plus a frozen encoder's: it lives outside the model (its vectors are cached) but is
    part of the cost."""
    counts = model.parameter_counts()
    encoder = builder.frozen_encoder_parameters()
    if encoder:
        total = counts["total"] + encoder
        counts |= {"encoder_frozen": encoder, "total": total, "trainable_pct": 100 * counts["trainable"] / total}
    return counts
