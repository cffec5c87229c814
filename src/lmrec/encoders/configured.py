"""The encoder and tuning mode `model.encoder` and `model.tuning` describe, and what a text tower reads its vectors
from: a frozen table (from the embedding cache, encoded once on a miss) or a trainable encoder with the tuning mode
applied."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lmrec.config.instantiate import instantiate_checked
from lmrec.encoders.embedding_cache import cached_embeddings
from lmrec.encoders.options import ENCODER_DEFAULTS, resolve_dtype
from lmrec.encoders.text_sources import TunedTextEncoder
from lmrec.encoders.tuning.base import Tuning
from lmrec.encoders.tuning.modes import FrozenTuning
from lmrec.errors import ConfigError

if TYPE_CHECKING:
    from lmrec.encoders.text_encoder import TextEncoder


def encoder_options(encoder_cfg: DictConfig) -> tuple[dict[str, Any], int]:
    """(TextEncoder keyword arguments, texts per encoder pass) from `model.encoder` (checked with the config,
    `ENCODER_OPTIONS`)."""
    options = OmegaConf.to_container(encoder_cfg, resolve=True)
    options["dtype"] = resolve_dtype(options.get("dtype"))
    batch_size = int(options.pop("batch_size", ENCODER_DEFAULTS["batch_size"]))
    return options, batch_size


def build_tuning(tuning_cfg: DictConfig | None) -> Tuning:
    """The tuning mode of a `model.tuning` section (frozen when there is none)."""
    method = tuning_cfg.get("method") if tuning_cfg else None
    if not method:
        return FrozenTuning()
    tuning = instantiate_checked(method, _convert_="all")
    if not isinstance(tuning, Tuning):
        raise ConfigError(f"model.tuning.method builds a {type(tuning).__name__}, not an lmrec tuning mode")
    return tuning


def frozen_text_embeddings(
    encoder_cfg: DictConfig, texts: Sequence[str], template_id: str, cache_dir: Path | None, device: str
) -> tuple[torch.Tensor, dict]:
    """The frozen encoder's vector for every item text, from the on-disk cache or encoded once, and the encoding's
    report (`cached_embeddings`)."""
    if cache_dir is None:
        raise ConfigError("paths.cache_dir is empty; the frozen text tower needs a cache folder for item embeddings")
    options, batch_size = encoder_options(encoder_cfg)
    return cached_embeddings(options, texts, template_id, cache_dir, batch_size, device)


def build_tuned_encoder(encoder_cfg: DictConfig, tuning: Tuning) -> TextEncoder:
    """The configured encoder with the tuning mode applied to its weights (used by training and by export)."""
    from lmrec.encoders.text_encoder import TextEncoder  # imported late: transformers start-up is slow

    options, _ = encoder_options(encoder_cfg)
    options.pop("threads", None)  # the embedding cache's encoding pass only (encoders.embedding_cache)
    encoder = TextEncoder(**options)
    encoder.model = tuning.apply(encoder.model)
    return encoder


def tuned_text_source(
    encoder_cfg: DictConfig,
    tuning_cfg: DictConfig,
    tuning: Tuning,
    texts: Sequence[str],
    cache_dir: Path | None = None,
) -> TunedTextEncoder:
    """A trainable encoder over the catalogue's texts, with the tuning mode applied to its weights. With
    `model.tuning.layer_cache_on_disk` the frozen layers' output is kept under `cache_dir` for later runs."""
    encoder = build_tuned_encoder(encoder_cfg, tuning)
    encoder.train()  # Lightning keeps each module's mode; a tuned encoder trains with its dropout on
    if tuning_cfg.get("gradient_checkpointing"):
        enable_activation_checkpointing(tuning.base_model(encoder.model))
    return TunedTextEncoder(
        encoder,
        texts,
        chunk_size=encoder_options(encoder_cfg)[1],
        tuning=tuning,
        compile=bool(tuning_cfg.get("compile")),
        layer_cache_dir=cache_dir if tuning_cfg.get("layer_cache_on_disk") and cache_dir is not None else None,
    )


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute each layer's activations in the backward pass (transformers' own implementation).

    Non-reentrant checkpointing also works when the inputs of a frozen embedding layer need no gradient.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 name; the old one warns
        model.activation_checkpointing_enable(kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
