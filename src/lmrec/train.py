"""`lmrec-train`: fit a recommender, test its best checkpoint, write metrics.json. Read it top to bottom."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from lmrec.atomic import atomic_path, write_json_atomic
from lmrec.builder import build_model, build_task, build_tuning, uses_text
from lmrec.config import CONFIG_DIR, instantiate_checked
from lmrec.data.datamodule import RecDataModule
from lmrec.distributed import distributed_job, quiet_other_ranks, use_job_command_for_ddp_ranks
from lmrec.encoders.resolve import count_parameters, resolve_model_dir
from lmrec.errors import InputError, MissingInputError, report_input_errors
from lmrec.loggers import build_loggers, finish_wandb, redact_secrets, wandb_finished_on_failure
from lmrec.module import RecommenderModule
from lmrec.objective import check_optimized_metric, objective_value
from lmrec.provenance import provenance
from lmrec.resources import ResourceMonitor
from lmrec.runfiles import load_weights, restore_model
from lmrec.sweep import in_multirun, job_threads

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig, output_dir: Path) -> RecDataModule:
    """Instantiate and load the data first: bad input fails here, before any model or encoder work."""
    export_dir = str(output_dir / "split") if cfg.get("export_split") else None
    datamodule: RecDataModule = instantiate_checked(cfg.data, export_split_dir=export_dir, _convert_="all")
    datamodule.prepare()
    return datamodule


def encoder_parameter_count(cfg: DictConfig) -> int | None:
    """Parameters of the frozen encoder behind a text tower, so the logged cost includes it."""
    if not uses_text(cfg) or not build_tuning(cfg).caches_embeddings:
        return None  # a tuned encoder is part of the model and already counted
    return count_parameters(resolve_model_dir(cfg.model.encoder.name_or_path, cfg.model.encoder.get("revision")))


def choose_precision(cfg: DictConfig) -> str:
    """The configured precision, with bf16 falling back to fp16 autocast on GPUs that lack bf16 (pre-Ampere)."""
    precision = str(cfg.trainer.get("precision", "32-true"))
    on_gpu = cfg.trainer.get("accelerator") in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    if precision.startswith("bf16") and on_gpu and not torch.cuda.is_bf16_supported():
        log.warning("this GPU has no bf16; training with precision=16-mixed instead of %s", precision)
        return "16-mixed"
    return precision


def init_from_run(model: RecommenderModule, source: Path) -> None:
    """Start from another run's trained towers and head (e.g. a frozen-encoder run before tuning the encoder).

    Weights whose names and shapes match are copied; the rest (a frozen run has no encoder weights, a tuned one
    no cached table) keep their initialisation. This is linear probing then fine-tuning (LP-FT): the tuned
    encoder starts with a head that already ranks well, instead of a random one that distorts its features.
    """
    if source.is_dir():
        from lmrec.eval import locate_run  # imported here: eval imports this module

        _, source = locate_run(str(source), "best")
    elif not source.is_file():
        raise MissingInputError(f"model.init_from={source}: no such run folder or checkpoint")
    state = load_weights(source)
    own = model.state_dict()
    matching = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise InputError(f"model.init_from={source}: no weight in it matches this model")
    model.load_state_dict(matching, strict=False)
    log.info("initialised %d of %d tensors from %s", len(matching), len(own), source)


def run(cfg: DictConfig, output_dir: Path) -> dict[str, float]:
    """Train and test one configuration; returns the test metrics also written to metrics.json."""
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere+ for the fp32 parts of the model
    # Cheap checks first: task/monitor, trainer (accelerator, precision), loggers, data; the encoder runs last.
    task = build_task(cfg)
    loggers = build_loggers(cfg.get("logger"))
    callbacks = [instantiate_checked(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    monitor = ResourceMonitor()
    trainer: pl.Trainer = instantiate_checked(
        cfg.trainer, logger=loggers or False, callbacks=[*callbacks, monitor], precision=choose_precision(cfg)
    )
    resolved = redact_secrets(OmegaConf.to_container(cfg, resolve=True))
    origin = provenance()
    for logger in loggers:  # the W&B run starts here: a job that fails from now on is still recorded as failed
        logger.log_hyperparams({**resolved, "provenance": origin})
    datamodule = build_datamodule(cfg, output_dir)
    model = build_model(cfg, datamodule, task=task)
    if cfg.model.get("init_from"):
        init_from_run(model, Path(cfg.model.init_from))

    counts = model.parameter_counts()
    encoder_params = encoder_parameter_count(cfg)
    if encoder_params:  # the frozen encoder lives outside the model (its vectors are cached) but is part of the cost
        total = counts["total"] + encoder_params
        counts |= {"encoder_frozen": encoder_params, "total": total, "trainable_pct": 100 * counts["trainable"] / total}
    stats = datamodule.statistics()
    for logger in loggers:
        logger.log_hyperparams({"params": counts, "data_stats": stats})
    log.info("parameters: %s", counts)
    log.info("data: %s", stats)

    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule)
    checkpoint = _best_checkpoint(trainer)
    if checkpoint is not None:
        restore_model(model, checkpoint)
        log.info("testing best checkpoint %s", checkpoint)
    metrics: dict[str, float] = {}
    if cfg.get("test", True):
        trainer.test(model, datamodule=datamodule, verbose=False)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}

    best_value = _best_score(trainer)
    summary: dict[str, Any] = dict(metrics)
    if best_value is not None:
        summary[f"best/{cfg.task.monitor}"] = best_value
    if trainer.is_global_zero:
        data = datamodule.prepare()
        write_json_atomic(output_dir / "metrics.json", summary)
        write_json_atomic(
            output_dir / "run.json",
            {
                "checkpoint": _relative(checkpoint, output_dir) if checkpoint else None,
                "monitor": cfg.task.monitor,
                "best_value": best_value,
                "params": counts,
                "data_stats": stats,
                "data_key": data.key,
                "data_inputs_sha256": data.input_sha256,
                "data_dropped_rows": data.dropped,
                "epochs": trainer.current_epoch,
                "seconds": time.perf_counter() - started,
                "provenance": origin,
                **monitor.summary(),
            },
        )
        for command in finish_wandb(loggers, {**summary, **{f"params/{k}": v for k, v in counts.items()}}):
            print(f"W&B run saved offline. Upload it with:\n  {command}")
    log.info("test metrics: %s", json.dumps(metrics, indent=1))
    return metrics


def _relative(path: Path, root: Path) -> str:
    """A path inside the run folder is stored relative to it, so the folder can be moved."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def _best_checkpoint(trainer: pl.Trainer) -> Path | None:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "") if callback else ""
    return Path(path) if path else None


def _best_score(trainer: pl.Trainer) -> float | None:
    callback = trainer.checkpoint_callback
    score = getattr(callback, "best_model_score", None) if callback else None
    return float(score) if score is not None else None


@rank_zero_only
def write_resolved_config(cfg: DictConfig, output_dir: Path) -> None:
    """Every value resolved (interpolations, env lookups), secrets redacted: what this run actually used."""
    resolved = redact_secrets(OmegaConf.to_container(cfg, resolve=True))
    with atomic_path(output_dir / "config_resolved.yaml") as tmp:
        tmp.write_text(OmegaConf.to_yaml(resolved))


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> dict[str, float] | float | None:
    """Metrics, or the `optimized_metric` value when a hyperparameter search asks for one."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    use_job_command_for_ddp_ranks("lmrec.train")
    quiet_other_ranks()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_resolved_config(cfg, output_dir)
    # In a multirun a failure ends this job only (Hydra records it, the sweep goes on); alone it exits the process.
    with report_input_errors(exit_process=not in_multirun()), wandb_finished_on_failure(), distributed_job():
        check_optimized_metric(cfg)
        if threads := job_threads(cfg.get("torch_threads")):
            torch.set_num_threads(threads)
        metrics = run(cfg, output_dir)
    return metrics if cfg.get("optimized_metric") is None else objective_value(cfg, output_dir / "metrics.json")


if __name__ == "__main__":
    main()
