"""`lmrec-eval run=<run dir or checkpoint>`: re-test a saved checkpoint with the config of the run that made it.

The model is rebuilt from the run's saved `.hydra/config.yaml` (data, towers, head, task); a frozen run's item
text embeddings come from the checkpoint itself, so the encoder is not needed (a tuned run's checkpoint holds its
trained encoder weights, and the frozen base weights come from the encoder folder, checked by their SHA-256);
the weights are loaded with
weights_only=True; and the split is evaluated with the same code as training, so the numbers equal the training
run's metrics.json. The data is checked against the fingerprint the run recorded, so a changed or different
dataset is refused rather than silently evaluated, and so is a run.json written for another config than the
folder's `.hydra/config.yaml`.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from lmrec.cache_integrity import check_cache_dir
from lmrec.cli.components import build_data, encoding_device, seed_run
from lmrec.cli.entry import entry_point
from lmrec.config.composition import check_composes
from lmrec.config.location import CONFIG_PATH
from lmrec.errors import ConfigError, report_input_errors
from lmrec.model.builders import model_builder
from lmrec.runs.checkpoints import load_checkpoint, restore_model
from lmrec.runs.folder import check_records_match_config, check_same_data, locate_run, rebuild_config
from lmrec.runs.per_user import write_per_user
from lmrec.runs.records import write_eval_metrics
from lmrec.runtime.console import protect_console
from lmrec.runtime.loggers import build_loggers
from lmrec.runtime.trainer import build_trainer
from lmrec.serving.candidates import candidate_loader

log = logging.getLogger(__name__)


def run_config(saved: DictConfig, cfg: DictConfig) -> DictConfig:
    """The run's own choices and data location; this invocation's output and cache folders and device."""
    paths = {"output_dir": cfg.paths.output_dir, "cache_dir": cfg.paths.cache_dir}
    if cfg.get("data_dir"):
        paths["data_dir"] = cfg.data_dir
    overrides: dict = {"paths": paths, "export_split": False}
    if cfg.get("accelerator"):
        overrides["trainer"] = {"accelerator": cfg.accelerator, "devices": 1, "strategy": "auto"}
        if cfg.accelerator == "cpu":
            overrides["trainer"]["precision"] = "32-true"
    return OmegaConf.merge(saved, overrides)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test (or validate) one checkpoint; writes and returns the metrics."""
    if cfg.split not in ("val", "test"):
        raise ConfigError(f"split={cfg.split!r}; expected 'val' or 'test'")
    run_dir, ckpt = locate_run(cfg.run, cfg.checkpoint)
    check_records_match_config(run_dir)  # a folder reused with other settings: its records are another run's
    run_cfg = run_config(rebuild_config(run_dir), cfg)
    output_dir = Path(cfg.paths.output_dir)
    seed_run(run_cfg)
    task, datamodule = build_data(run_cfg, candidate_loader)
    check_cache_dir(run_cfg.paths.get("cache_dir"))
    builder = model_builder(run_cfg.model)
    loggers = build_loggers(cfg.logger) if cfg.get("logger") else []
    try:
        trainer = build_trainer(
            run_cfg.trainer, loggers, [], default_root_dir=str(output_dir), enable_checkpointing=False
        )
    except ConfigError as err:  # the folder's targets were checked when it was read: this is Lightning's refusal
        raise ConfigError(
            f"{err} (the run trained with trainer.accelerator={run_cfg.trainer.accelerator}; "
            "pass accelerator=cpu or accelerator=gpu to evaluate elsewhere)"
        ) from None
    payload = load_checkpoint(ckpt)  # before the data is read: a damaged file fails in a second
    check_same_data(run_dir, datamodule.prepare().key)
    # A frozen run's text vectors come from the checkpoint itself: no encoder is loaded or run.
    model = builder.build(
        datamodule, task, encoding_device(run_cfg.trainer), str(run_cfg.task.monitor), payload["state_dict"]
    )
    restore_model(model, ckpt, payload)
    if cfg.split == "val":
        trainer.validate(model, datamodule=datamodule, verbose=False)
    else:
        trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{cfg.split}/")}
    if trainer.is_global_zero:
        write_eval_metrics(Path(cfg.metrics_file), {**metrics, "checkpoint": str(ckpt)})
        write_per_user(output_dir, cfg.split, model.per_user.get(cfg.split), datamodule.prepare())
    log.info("%s metrics of %s: %s", cfg.split, ckpt, json.dumps(metrics, indent=1))
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def run_job(cfg: DictConfig) -> dict[str, float]:
    # A run trained with DDP is re-tested with DDP unless accelerator= says otherwise; `lmrec-eval -m run=a,b`: a
    # bad run fails its own job only, and each job leaves no DDP state behind.
    with entry_point("lmrec.cli.eval"):
        return evaluate(cfg)


def main() -> Any:
    """`lmrec-eval`: the console is redacted before Hydra parses the command line (its crash report repeats it)."""
    protect_console(sys.argv)
    with report_input_errors():
        check_composes("eval", sys.argv[1:])
    return run_job()


if __name__ == "__main__":
    main()
