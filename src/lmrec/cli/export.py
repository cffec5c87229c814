"""`lmrec-export run=<run dir>`: write a run's tuned text encoder in the standard formats, for use outside lmrec.

- full / partial: a transformers model folder (`AutoModel.from_pretrained(folder)`);
- peft modes: a peft adapter folder (`PeftModel.from_pretrained(AutoModel.from_pretrained(base), folder)`), and
  with `merge_lora=true` also `merged/`, the LoRA update folded into the weights (a plain transformers model);
- adapter: the base in transformers' format plus the bottleneck weights
  (`lmrec.encoders.tuning.bottleneck.load_adapted`).

Every export also holds the tokenizer and `lmrec_encoder.json` (pooling, normalisation, max length, base weights'
SHA-256), because a sentence vector is model + pooling, and the pooling is not in the model's config.

Only the encoder is rebuilt (no data, no towers), from the run's saved config and the checkpoint's trained weights.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from lmrec.atomic import publish_dir
from lmrec.cli.entry import entry_point
from lmrec.config.composition import check_composes
from lmrec.config.location import CONFIG_PATH
from lmrec.encoders.configured import build_tuned_encoder, build_tuning
from lmrec.encoders.resolve import canonical_name
from lmrec.errors import CheckpointError, ConfigError, report_input_errors
from lmrec.runs.checkpoints import check_encoder_weights, load_checkpoint
from lmrec.runs.folder import locate_run, rebuild_config
from lmrec.runtime.console import protect_console

log = logging.getLogger(__name__)

#: Marks where the transformers model starts in a module state-dict key: <tower>.encoder.model.<hf key>.
ENCODER_KEY = "encoder.model."


def encoder_state(state: dict[str, Any]) -> dict[str, Any]:
    """The transformers/peft model's own keys from a RecommenderModule state dict (the first tuned encoder's)."""
    prefixes = sorted({key[: key.index(ENCODER_KEY) + len(ENCODER_KEY)] for key in state if ENCODER_KEY in key})
    if not prefixes:
        return {}
    prefix = prefixes[0]
    out = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    return {key.removeprefix("_orig_mod."): value for key, value in out.items()}  # torch.compile's wrapper


def export_encoder(cfg: DictConfig) -> Path:
    """Rebuild the run's tuned encoder, load its trained weights and write it to `cfg.output_dir`."""
    run_dir, ckpt = locate_run(cfg.run, cfg.checkpoint)
    run_cfg = rebuild_config(run_dir)
    out = Path(cfg.output_dir) if cfg.get("output_dir") else run_dir / "export"
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output_dir={out} exists and is not empty; choose another folder or remove it")
    tuning = build_tuning(run_cfg.model.get("tuning"))
    tuning.check_export(merge=bool(cfg.get("merge_lora")))

    encoder = build_tuned_encoder(run_cfg.model.encoder, tuning)
    payload = load_checkpoint(ckpt)
    check_encoder_weights(ckpt, payload.get("encoder_weights_sha256"), [encoder.weights_sha256])
    trained = encoder_state(payload["state_dict"])
    missing, unexpected = encoder.model.load_state_dict(trained, strict=False)
    frozen = {name for name, p in encoder.model.named_parameters() if not p.requires_grad}
    if unexpected or set(missing) - frozen - _buffers(encoder.model):
        raise CheckpointError(f"{ckpt}: encoder weights do not match the run's tuning mode ({tuning.name})")

    base_name = canonical_name(str(run_cfg.model.encoder.name_or_path))
    with publish_dir(out) as tmp:
        tuning.export(encoder.model, tmp, base_name=base_name, merge=bool(cfg.get("merge_lora")))
        encoder.tokenizer.save_pretrained(tmp)
        if (tmp / "merged").is_dir():
            encoder.tokenizer.save_pretrained(tmp / "merged")
        (tmp / "lmrec_encoder.json").write_text(
            json.dumps(
                {
                    "base_model": base_name,
                    "base_weights_sha256": encoder.weights_sha256,
                    "tuning": tuning.name,
                    "pooling": encoder.pooling,
                    "normalize": encoder.normalize,
                    "max_length": encoder.max_length,
                    "checkpoint": str(ckpt.resolve()),
                },
                indent=1,
            )
            + "\n"
        )
    log.info("exported the %s-tuned encoder of %s to %s", tuning.name, run_dir, out)
    return out


def _buffers(model: Any) -> set[str]:
    return {name for name, _ in model.named_buffers()}


def export_embeddings(cfg: DictConfig) -> Path:
    """The run's item and user vectors (and an index) into `cfg.output_dir` (`lmrec.serving.embeddings`)."""
    from lmrec.serving.embeddings import write_embeddings
    from lmrec.serving.recommender import load

    if cfg.get("index") is not None and not cfg.get("embeddings"):
        raise ConfigError(f"index={cfg.index} builds an index over the run's vectors: add embeddings=true")
    if cfg.get("index") is not None:  # before the run is loaded: a wrong kind or a missing faiss fails at once
        from lmrec.serving.index import IndexOptions, require_faiss

        IndexOptions(kind=str(cfg.index)).check()
        require_faiss()
    rec = load(cfg.run, cfg.checkpoint)
    out = Path(cfg.output_dir) if cfg.get("output_dir") else rec.loaded.folder / "embeddings"
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output_dir={out} exists and is not empty; choose another folder or remove it")
    manifest = write_embeddings(rec, out, cfg.get("index"))
    log.info(
        "wrote %d item vectors (%d users) of width %d to %s", manifest["items"], manifest["users"], manifest["dim"], out
    )
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="export")
def run_job(cfg: DictConfig) -> None:
    with entry_point("lmrec.cli.export"):
        out = export_embeddings(cfg) if cfg.get("embeddings") or cfg.get("index") else export_encoder(cfg)
        print(f"exported to {out}")


def main() -> Any:
    """`lmrec-export`: the console is redacted before Hydra parses the command line (its crash report repeats it)."""
    protect_console(sys.argv)
    with report_input_errors():
        check_composes("export", sys.argv[1:])
    return run_job()


if __name__ == "__main__":
    main()
