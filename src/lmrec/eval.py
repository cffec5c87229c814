"""`lmrec-eval run=<run dir or checkpoint>`: re-test a saved checkpoint with the config of the run that made it.

The model is rebuilt from the run's saved `.hydra/config.yaml` (data, towers, head, task), the checkpoint's
weights are loaded with weights_only=True, and the split is evaluated with the same code as training, so the
numbers equal the training run's metrics.json.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lmrec.builder import build_model
from lmrec.config import CONFIG_DIR
from lmrec.loggers import build_loggers
from lmrec.runfiles import load_weights, write_json_atomic
from lmrec.train import build_datamodule

log = logging.getLogger(__name__)


def locate_run(run: str, checkpoint: str) -> tuple[Path, Path]:
    """(run dir, checkpoint file) from a run folder or a checkpoint path inside one."""
    path = Path(run).expanduser()
    if path.is_file():
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        return run_dir, path
    if not (path / ".hydra" / "config.yaml").is_file():
        raise FileNotFoundError(f"{path} is not an lmrec run directory (no .hydra/config.yaml)")
    if checkpoint == "last":
        ckpt = path / "checkpoints" / "last.ckpt"
    elif checkpoint == "best":
        info = path / "run.json"
        recorded = json.loads(info.read_text()).get("checkpoint") if info.is_file() else None
        if not recorded:
            raise FileNotFoundError(f"{info} records no best checkpoint; pass checkpoint=last or a .ckpt path")
        ckpt = path / recorded
    else:
        ckpt = path / checkpoint
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} does not exist")
    return path, ckpt


def evaluate(cfg: DictConfig) -> dict[str, float]:
    run_dir, ckpt = locate_run(cfg.run, cfg.checkpoint)
    if cfg.split not in ("val", "test"):
        raise ValueError(f"split={cfg.split!r}; expected 'val' or 'test'")
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    # The run's own choices, this invocation's paths (the saved ones point at the training output dir).
    run_cfg = OmegaConf.merge(saved, {"paths": cfg.paths, "export_split": False})
    output_dir = Path(cfg.paths.output_dir)
    pl.seed_everything(run_cfg.seed, workers=True)
    datamodule = build_datamodule(run_cfg, output_dir)
    model = build_model(run_cfg, datamodule)
    model.load_state_dict(load_weights(ckpt))
    loggers = build_loggers(cfg.logger) if cfg.get("logger") else []
    trainer: pl.Trainer = instantiate(
        run_cfg.trainer,
        logger=loggers or False,
        callbacks=[],
        default_root_dir=str(output_dir),
        enable_checkpointing=False,
    )
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
    return evaluate(cfg)


if __name__ == "__main__":
    main()
