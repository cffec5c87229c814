"""`lmrec-train`: fit a recommender, test its best checkpoint, record the run. Reads top to bottom:

open the run folder (refuse another run's files, or resume) -> setup (checks, loggers, trainer, data, model) -> fit
(from the last checkpoint when resuming) -> test (the best checkpoint) -> record (run folder, W&B)
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only

from lmrec.cache_integrity import check_cache_dir
from lmrec.cli.components import build_data, encoding_device, seed_run
from lmrec.cli.data import data_card
from lmrec.cli.entry import entry_point
from lmrec.config.composition import check_composes
from lmrec.config.instantiate import instantiate_checked
from lmrec.config.location import CONFIG_PATH
from lmrec.data.card import publish_card
from lmrec.data.datamodule import RecDataModule
from lmrec.encoders.text_sources import encoding_report
from lmrec.errors import MissingInputError, report_input_errors
from lmrec.model.builders import model_builder
from lmrec.runs import records
from lmrec.runs.checkpoints import (
    AtomicCheckpointIO,
    EncoderWeightsOut,
    load_matching_weights,
    load_weights,
    restore_model,
)
from lmrec.runs.folder import config_sha256, locate_run
from lmrec.runs.per_user import write_per_user
from lmrec.runs.provenance import provenance
from lmrec.runs.records import relative_to_run, resolved_config, write_metrics, write_resolved_config, write_run_info
from lmrec.runs.resume import open_run_folder, resume_command_line
from lmrec.runs.rng_state import RngStateCheckpoint
from lmrec.runs.split_export import export_split
from lmrec.runs.wandb_identity import use_run_identity
from lmrec.runtime.console import protect_console
from lmrec.runtime.distributed import process_rank
from lmrec.runtime.loggers import build_loggers, finish_wandb, wandb_finished_on_failure
from lmrec.runtime.resources import ResourceMonitor
from lmrec.runtime.trainer import build_trainer
from lmrec.serving.candidates import candidate_loader
from lmrec.sweeps.context import job_threads
from lmrec.sweeps.objective import check_optimized_metric, objective_value

log = logging.getLogger(__name__)


@dataclass
class TrainingRun:
    """Everything `setup` built, which `fit`, `test` and `record` use."""

    cfg: DictConfig
    output_dir: Path
    trainer: pl.Trainer
    loggers: list[Logger]
    monitor: ResourceMonitor
    datamodule: RecDataModule
    model: pl.LightningModule
    provenance: dict[str, Any]
    config_sha256: str = ""
    resume_from: Path | None = None
    counts: dict[str, float] = field(default_factory=dict)
    #: Which weights the test metrics are of, when not the best checkpoint's (recorded in run.json).
    tested: str | None = None
    #: split -> the per-user file written (relative to the run folder).
    per_user: dict[str, str] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    task_cost: dict[str, float] = field(default_factory=dict)  #: the fit's `<split>/cost/*` (records.task_cost)
    started: float = field(default_factory=time.perf_counter)


# -- setup ---------------------------------------------------------------------------------------------------------
def setup(cfg: DictConfig, output_dir: Path, state: dict[str, Any] | None = None) -> TrainingRun:
    """Cheap checks first (task, data options, model builder, loggers, trainer); the data is read next and the
    encoder runs last."""
    started, fingerprint = time.perf_counter(), config_sha256(cfg)
    seed_run(cfg)
    task, datamodule = build_data(cfg, candidate_loader)
    check_cache_dir(cfg.paths.get("cache_dir"))
    check_optimized_metric(cfg.get("optimized_metric"), task, str(cfg.task.monitor))
    builder = model_builder(cfg.model)
    use_run_identity(cfg.get("logger"), state)  # a resume logs into the W&B run recorded when the run started
    loggers = build_loggers(cfg.get("logger"))
    callbacks = [instantiate_checked(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    monitor = ResourceMonitor()
    trainer = build_trainer(
        cfg.trainer,
        loggers,
        [*callbacks, monitor, RngStateCheckpoint(), EncoderWeightsOut()],
        plugins=[AtomicCheckpointIO()],
        **builder.trainer_options(),
    )
    origin = provenance()
    for logger in loggers:  # the W&B run starts here: a job that fails from now on is still recorded as failed
        logger.log_hyperparams({**resolved_config(cfg), "provenance": origin})
    log.info("preparing data")
    data = datamodule.prepare()
    if cfg.get("export_split") and trainer.is_global_zero:
        written = export_split(data, output_dir / "split")
        log.info("exported split to %s", ", ".join(str(p) for p in written.values()))
    model = builder.build(datamodule, task, encoding_device(cfg.trainer), str(cfg.task.monitor))
    if cfg.model.get("init_from"):
        init_from_run(model, Path(cfg.model.init_from))
    run = TrainingRun(
        cfg, output_dir, trainer, loggers, monitor, datamodule, model, origin, fingerprint, started=started
    )
    run.counts, run.stats = records.parameter_counts(builder, model), datamodule.statistics()
    for logger in loggers:
        logger.log_hyperparams({"params": run.counts, "data_stats": run.stats})
    if trainer.is_global_zero:  # the data card (figures + protocol) into the run folder and the W&B run
        publish_card(output_dir, data_card(cfg, datamodule), loggers)
    log.info("parameters: %s", run.counts)
    log.info("data: %s", run.stats)
    return run


def init_from_run(model: pl.LightningModule, source: Path) -> None:
    """Start from another run's trained towers and head (e.g. a frozen-encoder run before tuning the encoder).

    Weights whose names and shapes match are copied; the rest (a frozen run has no encoder weights, a tuned one
    no cached table) keep their initialisation. This is linear probing then fine-tuning (LP-FT): the tuned
    encoder starts with a head that already ranks well, instead of a random one that distorts its features.
    """
    if source.is_dir():
        _, source = locate_run(source, "best")
    elif not source.is_file():
        raise MissingInputError(f"model.init_from={source}: no such run folder or checkpoint")
    copied = load_matching_weights(model, load_weights(source), source)
    log.info("initialised %d of %d tensors from %s", copied, len(model.state_dict()), source)


# -- fit and test --------------------------------------------------------------------------------------------------
def fit(run: TrainingRun) -> None:
    """Train; from `run.resume_from` (optimizer, scheduler, loop, callbacks and generator states) when resuming."""
    if run.cfg.get("train", True):
        ckpt_path = str(run.resume_from) if run.resume_from else None
        run.trainer.fit(run.model, datamodule=run.datamodule, ckpt_path=ckpt_path)
        run.task_cost = records.task_cost(run.trainer.callback_metrics)  # testing replaces them: keep the fit's now


def test(run: TrainingRun) -> dict[str, float]:
    """Test metrics of the best checkpoint (by `task.monitor`), or of the current weights without one."""
    checkpoint, tested_step = best_checkpoint(run.trainer), run.trainer.global_step
    if checkpoint is not None:
        tested_step = restore_model(run.model, checkpoint)
        log.info("testing best checkpoint %s", checkpoint)
    elif run.cfg.get("train", True) and str(run.cfg.task.monitor) not in run.trainer.callback_metrics:
        run.tested = "last weights: training stopped before its first validation"
        log.warning(
            "no validation ran before training stopped (trainer.limit_val_batches=0, or max_steps/max_time reached "
            "within the first epoch), so there is no best checkpoint: testing the last weights; metrics.json has no "
            "best/%s",
            run.cfg.task.monitor,
        )
    if not run.cfg.get("test", True):
        return {}
    if run.datamodule.task.keeps_rows:  # the validation rows of the weights tested, beside the test rows
        if getattr(run.model, "evaluated_at", {}).get("val") != tested_step:  # else the fit's last pass has them
            log.info("validating the tested weights for per_user/val.parquet")
            run.trainer.validate(run.model, datamodule=run.datamodule, verbose=False)
        record_per_user(run, "val")
    log.info("testing")
    run.trainer.test(run.model, datamodule=run.datamodule, verbose=False)
    record_per_user(run, "test")
    return {k: float(v) for k, v in run.trainer.callback_metrics.items() if k.startswith("test/")}


def record_per_user(run: TrainingRun, split: str) -> None:
    """Write the pass's per-user rows into the run folder (rank zero: the rows are every rank's already)."""
    if run.trainer.is_global_zero:
        rows = getattr(run.model, "per_user", {}).get(split)
        path = write_per_user(run.output_dir, split, rows, run.datamodule.prepare())
        if path is not None:
            run.per_user[split] = relative_to_run(path, run.output_dir)


def best_checkpoint(trainer: pl.Trainer) -> Path | None:
    path = getattr(trainer.checkpoint_callback, "best_model_path", "") if trainer.checkpoint_callback else ""
    return Path(path) if path else None


def best_score(trainer: pl.Trainer) -> float | None:
    score = getattr(trainer.checkpoint_callback, "best_model_score", None) if trainer.checkpoint_callback else None
    return float(score) if score is not None else None


# -- record --------------------------------------------------------------------------------------------------------
def record(run: TrainingRun, metrics: dict[str, float]) -> None:
    """metrics.json, run.json and the W&B summary, written by rank zero."""
    cfg, trainer = run.cfg, run.trainer
    best_value = best_score(trainer)
    summary: dict[str, Any] = dict(metrics)
    if best_value is not None:
        summary[f"best/{cfg.task.monitor}"] = best_value
    if trainer.is_global_zero:
        data, checkpoint = run.datamodule.prepare(), best_checkpoint(trainer)
        write_metrics(run.output_dir, summary)
        write_run_info(
            run.output_dir,
            {
                "checkpoint": relative_to_run(checkpoint, run.output_dir) if checkpoint else None,
                "tested": run.tested or ("best checkpoint" if checkpoint else "current weights"),
                "per_user": run.per_user or None,
                "config_sha256": run.config_sha256,
                "resumed_from": relative_to_run(run.resume_from, run.output_dir) if run.resume_from else None,
                "monitor": cfg.task.monitor,
                "best_value": best_value,
                "params": run.counts,
                "data_stats": run.stats,
                "data_key": data.key,
                "data_inputs_sha256": data.input_sha256,
                "data_dropped_rows": data.dropped,
                "epochs": trainer.current_epoch,
                "seconds": time.perf_counter() - run.started,
                "encoding": encoding_report(run.model),
                "task_cost": {**run.task_cost, **records.task_cost(trainer.callback_metrics)} or None,
                "provenance": run.provenance,
                **run.monitor.summary(),
            },
        )
        for command in finish_wandb(run.loggers, {**summary, **{f"params/{k}": v for k, v in run.counts.items()}}):
            print(f"W&B run saved offline. Upload it with:\n  {command}")
    log.info("test metrics: %s", json.dumps(metrics, indent=1))


def train(
    cfg: DictConfig, output_dir: Path, resume_from: Path | None = None, state: dict[str, Any] | None = None
) -> dict[str, float]:
    """Train and test one configuration; returns the test metrics also written to metrics.json.

    `resume_from` and `state` come from `lmrec.runs.resume.open_run_folder`: the checkpoint a resumed run
    continues from, and the run state recorded when it started (its W&B run id)."""
    run = setup(cfg, output_dir, state)
    run.resume_from = resume_from
    fit(run)
    metrics = test(run)
    record(run, metrics)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def run_job(cfg: DictConfig) -> dict[str, float] | float | None:
    """Metrics, or the `optimized_metric` value when a hyperparameter search asks for one."""
    from hydra.core.hydra_config import HydraConfig

    output_dir = Path(cfg.paths.output_dir)
    with entry_point("lmrec.cli.train"), wandb_finished_on_failure():
        output_dir.mkdir(parents=True, exist_ok=True)
        threads, reason = job_threads(cfg.get("torch_threads"))
        if threads:
            torch.set_num_threads(threads)
        overrides = list(HydraConfig.get().overrides.task)
        resume_from, state = open_run_folder(cfg, output_dir, overrides, torch.get_num_threads(), process_rank() == 0)
        if resume_from is not None and (state or {}).get("torch_threads"):  # sums add up in the same order
            torch.set_num_threads(int(state["torch_threads"]))
            reason = "as when the run started"
        log.info("torch CPU threads: %d (%s)", torch.get_num_threads(), reason)
        rank_zero_only(write_resolved_config)(cfg, output_dir)
        metrics = train(cfg, output_dir, resume_from, state)
        name = cfg.get("optimized_metric")
        return metrics if name is None else objective_value(str(name), output_dir)


def main() -> dict[str, float] | float | None:
    """`lmrec-train`: `resume=<run dir>` becomes the run's own overrides before Hydra composes the config."""
    protect_console(sys.argv)
    with report_input_errors():
        sys.argv = resume_command_line(sys.argv)
        check_composes("train", sys.argv[1:])
    return run_job()


if __name__ == "__main__":
    main()
