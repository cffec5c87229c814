"""`lmrec-eval run=<run dir or checkpoint>`: re-test a saved checkpoint with the config of the run that made it.

The model is rebuilt from the run's saved `.hydra/config.yaml` (data, towers, head, task); a frozen run's item
text embeddings come from the checkpoint itself, so the encoder is not needed (a tuned run's checkpoint holds its
trained encoder weights, and the frozen base weights come from the encoder folder, checked by their SHA-256);
the weights are loaded with
weights_only=True; and the split is evaluated with the same code as training, so the numbers equal the training
run's metrics.json. The data is checked against the fingerprint the run recorded, so a changed or different
dataset is refused rather than silently evaluated.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from lmrec.atomic import write_json_atomic
from lmrec.builder import build_model
from lmrec.config import CONFIG_DIR, instantiate_checked
from lmrec.distributed import distributed_job, quiet_other_ranks, use_job_command_for_ddp_ranks
from lmrec.errors import ConfigError, InputError, MissingInputError, report_input_errors
from lmrec.loggers import build_loggers
from lmrec.runfiles import load_checkpoint, restore_model
from lmrec.sweep import in_multirun
from lmrec.train import build_datamodule

log = logging.getLogger(__name__)


def locate_run(run: str, checkpoint: str) -> tuple[Path, Path]:
    """(run dir, checkpoint file) from a run folder or a checkpoint path inside one."""
    path = Path(run).expanduser()
    if path.is_file():
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        if not (run_dir / ".hydra" / "config.yaml").is_file():
            raise MissingInputError(f"{path} is not inside an lmrec run directory (no ../.hydra/config.yaml)")
        return run_dir, path
    if not (path / ".hydra" / "config.yaml").is_file():
        raise MissingInputError(f"run={path} is not an lmrec run directory (no .hydra/config.yaml)")
    if checkpoint == "last":
        ckpt = path / "checkpoints" / "last.ckpt"
    elif checkpoint == "best":
        info = path / "run.json"
        recorded = json.loads(info.read_text()).get("checkpoint") if info.is_file() else None
        if not recorded:
            raise MissingInputError(f"{info} records no best checkpoint; pass checkpoint=last or a .ckpt path")
        ckpt = path / recorded
    else:
        ckpt = path / checkpoint
    if not ckpt.is_file():
        raise MissingInputError(f"checkpoint {ckpt} does not exist")
    return path, ckpt


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


def text_embeddings_from(state: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The frozen item-text matrix a text/hybrid tower stores in its checkpoint, if there is one."""
    found = [tensor for name, tensor in state.items() if name.endswith("text.embeddings")]
    return found[0] if len(found) == 1 else None


def check_same_data(run_dir: Path, key: str) -> None:
    """Refuse to evaluate a run on data other than the data it trained on (fingerprints from run.json)."""
    info = run_dir / "run.json"
    recorded = json.loads(info.read_text()).get("data_key") if info.is_file() else None
    if recorded and recorded != key:
        raise InputError(
            f"the data this evaluation loaded (fingerprint {key}) differs from the data the run trained on "
            f"({recorded}, see {info}); restore the run's data files or point paths.data_dir at them"
        )


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test (or validate) one checkpoint; writes and returns the metrics."""
    if cfg.split not in ("val", "test"):
        raise ConfigError(f"split={cfg.split!r}; expected 'val' or 'test'")
    run_dir, ckpt = locate_run(cfg.run, cfg.checkpoint)
    run_cfg = run_config(OmegaConf.load(run_dir / ".hydra" / "config.yaml"), cfg)
    output_dir = Path(cfg.paths.output_dir)
    pl.seed_everything(run_cfg.seed, workers=True)
    loggers = build_loggers(cfg.logger) if cfg.get("logger") else []
    try:
        trainer: pl.Trainer = instantiate_checked(
            run_cfg.trainer,
            logger=loggers or False,
            callbacks=[],
            default_root_dir=str(output_dir),
            enable_checkpointing=False,
        )
    except ConfigError as err:
        raise ConfigError(
            f"{err} (the run trained with trainer.accelerator={run_cfg.trainer.accelerator}; "
            "pass accelerator=cpu or accelerator=gpu to evaluate elsewhere)"
        ) from None
    datamodule = build_datamodule(run_cfg, output_dir)
    check_same_data(run_dir, datamodule.prepare().key)
    payload = load_checkpoint(ckpt)
    model = build_model(run_cfg, datamodule, text_embeddings=text_embeddings_from(payload["state_dict"]))
    restore_model(model, ckpt, payload)
    if cfg.split == "val":
        trainer.validate(model, datamodule=datamodule, verbose=False)
    else:
        trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(f"{cfg.split}/")}
    if trainer.is_global_zero:
        write_json_atomic(Path(cfg.metrics_file), {**metrics, "checkpoint": str(ckpt)})
    log.info("%s metrics of %s: %s", cfg.split, ckpt, json.dumps(metrics, indent=1))
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> dict[str, float]:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    use_job_command_for_ddp_ranks("lmrec.eval")  # a run trained with DDP is re-tested with DDP unless accelerator=
    quiet_other_ranks()
    # `lmrec-eval -m run=a,b`: a bad run fails its own job only, and each job leaves no DDP state behind.
    with report_input_errors(exit_process=not in_multirun()), distributed_job():
        return evaluate(cfg)


if __name__ == "__main__":
    main()
