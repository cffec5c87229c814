"""Build the model a config describes, feeding each component the data-derived arguments it asks for.

Component configs are `_partial_` Hydra targets; sizes and matrices that only the data knows (number of users,
the item text embeddings, the training history) are injected here by parameter name, so a new tower or head
only has to name the argument it wants.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import nn

from lmrec.config import instantiate_checked
from lmrec.data.datamodule import RecDataModule
from lmrec.encoders.embedding_cache import load_or_encode
from lmrec.encoders.options import check_encoder_options, encoder_width
from lmrec.encoders.resolve import resolve_model_dir
from lmrec.encoders.text_sources import FrozenTextTable, TunedTextEncoder
from lmrec.encoders.tuning import FrozenTuning, Tuning, is_peft_model
from lmrec.errors import ConfigError
from lmrec.module import RecommenderModule

if TYPE_CHECKING:
    from lmrec.encoders.text_encoder import TextEncoder

log = logging.getLogger(__name__)

#: Config keys that describe a component to humans and other configs but are not constructor arguments.
META_KEYS = ("name", "monitor", "monitor_mode")


def instantiate_component(cfg: DictConfig, available: dict[str, Callable[[], Any]]) -> Any:
    """Instantiate `cfg`, passing each injectable argument its target's signature names (computed lazily)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in META_KEYS:
        plain.pop(key, None)
    accepted = inspect.signature(get_class(plain["_target_"])).parameters
    built = instantiate_checked(plain, _convert_="all")
    extra = {name: make() for name, make in available.items() if name in accepted and name not in plain}
    return built(**extra) if plain.get("_partial_") else built


def build_task(cfg: DictConfig) -> nn.Module:
    """The task, checked against the monitored metric so a typo fails before any data or model work."""
    task = instantiate_component(cfg.task, {})
    monitor = str(cfg.task.monitor)
    valid = [f"val/{name}" for name in task.metric_names()]
    if monitor not in valid:
        raise ConfigError(
            f"task.monitor={monitor} is not a metric this task computes; choose one of {', '.join(valid)}"
        )
    return task


def uses_text(cfg: DictConfig) -> bool:
    """Whether the configured item tower needs the text encoder (declared by the tower class)."""
    return bool(getattr(get_class(cfg.model.item_tower._target_), "uses_text", False))


def item_text_embeddings(cfg: DictConfig, datamodule: RecDataModule) -> torch.Tensor:
    """The frozen encoder's vector for every item text, from the on-disk cache or encoded once."""
    encoder_cfg = OmegaConf.to_container(cfg.model.encoder, resolve=True)
    batch_size = int(encoder_cfg.pop("batch_size", 128))
    if datamodule.cache_dir is None:
        raise ConfigError("paths.cache_dir is empty; the frozen text tower needs a cache folder for item embeddings")
    device = "cuda" if cfg.trainer.get("accelerator") == "gpu" and torch.cuda.is_available() else "cpu"
    embeddings, _ = load_or_encode(
        encoder_cfg, datamodule.item_texts, datamodule.template_id, datamodule.cache_dir, batch_size, device
    )
    return embeddings


def build_tuning(cfg: DictConfig) -> Tuning:
    """The configured tuning mode (frozen when the model config has none)."""
    method = cfg.model.get("tuning", {}).get("method") if cfg.model.get("tuning") else None
    if not method:
        return FrozenTuning()
    tuning = instantiate_checked(method, _convert_="all")
    if not isinstance(tuning, Tuning):
        raise ConfigError(f"model.tuning.method builds a {type(tuning).__name__}, not an lmrec tuning mode")
    return tuning


def build_tuned_encoder(cfg: DictConfig, tuning: Tuning) -> TextEncoder:
    """The configured encoder with the tuning mode applied to its weights (used by training and by export)."""
    from lmrec.encoders.text_encoder import TextEncoder  # imported late: transformers start-up is slow

    encoder_cfg = OmegaConf.to_container(cfg.model.encoder, resolve=True)
    encoder_cfg.pop("batch_size", None)
    encoder = TextEncoder(**encoder_cfg)
    encoder.model = tuning.apply(encoder.model)
    return encoder


def tuned_text_source(cfg: DictConfig, datamodule: RecDataModule, tuning: Tuning) -> TunedTextEncoder:
    """A trainable encoder over the catalogue's texts, with the tuning mode applied to its weights."""
    options = cfg.model.tuning
    encoder = build_tuned_encoder(cfg, tuning)
    encoder.train()  # Lightning keeps each module's mode; a tuned encoder trains with its dropout on
    if options.get("gradient_checkpointing"):
        enable_activation_checkpointing(encoder.model)
    return TunedTextEncoder(
        encoder,
        datamodule.item_texts,
        chunk_size=int(cfg.model.encoder.get("batch_size", 128)),
        tuning=tuning,
        compile=bool(options.get("compile")),
    )


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Recompute each layer's activations in the backward pass (transformers' own implementation).

    Non-reentrant checkpointing also works when the inputs of a frozen embedding layer need no gradient.
    """
    base = model.get_base_model() if is_peft_model(model) else model
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5 name; the old one warns
        base.activation_checkpointing_enable(kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def build_model(
    cfg: DictConfig,
    datamodule: RecDataModule,
    task: nn.Module | None = None,
    text_embeddings: torch.Tensor | None = None,
) -> RecommenderModule:
    """Towers + head + task for `cfg`. `text_embeddings` (e.g. from a checkpoint) skips the frozen encoder.

    Every component is first built once with a one-row stand-in for the text vectors, so a bad tower or head
    option fails in a second instead of after the encoding pass or loading the encoder.
    """
    datamodule.prepare()
    dim = int(cfg.model.dim)
    if dim < 1:
        raise ConfigError(f"model.dim={dim}; expected a positive width")
    task = task if task is not None else build_task(cfg)
    tuning = build_tuning(cfg)
    if not tuning.caches_embeddings and not uses_text(cfg):
        raise ConfigError(
            f"model/tuning={tuning.name} tunes the text encoder, but model/item_tower={cfg.model.item_tower.name} "
            "uses no text; pick a text or hybrid item tower, or model/tuning=frozen"
        )
    width = 0
    if uses_text(cfg):
        if text_embeddings is not None:
            width = int(text_embeddings.shape[1])
        else:
            check_encoder_options(cfg.model.encoder.pooling, cfg.model.encoder.max_length)
            width = encoder_width(resolve_model_dir(cfg.model.encoder.name_or_path, cfg.model.encoder.get("revision")))

    history = functools.cache(datamodule.train_history)

    def components(text_source: Callable[[], nn.Module]) -> dict[str, nn.Module]:
        available = {
            "num_users": lambda: datamodule.num_users,
            "num_items": lambda: datamodule.num_items,
            "dim": lambda: dim,
            "text_source": text_source,
            "history": history,
        }
        return {
            "head": instantiate_component(cfg.model.head, available),
            "user_tower": instantiate_component(cfg.model.user_tower, available),
            "item_tower": instantiate_component(cfg.model.item_tower, available),
        }

    with torch.random.fork_rng():  # the dry run must not shift the real model's initialisation
        components(lambda: FrozenTextTable(torch.zeros(1, width)))
        optimizer, scheduler = build_optimizer(cfg)

    def text_source() -> nn.Module:
        if not tuning.caches_embeddings:
            return tuned_text_source(cfg, datamodule, tuning)
        return FrozenTextTable(
            text_embeddings if text_embeddings is not None else item_text_embeddings(cfg, datamodule)
        )

    tuning_options = cfg.model.get("tuning") or {}
    return RecommenderModule(
        task=task,
        optimizer=optimizer,
        scheduler=scheduler,
        monitor=str(cfg.task.monitor),
        encoder_lr=tuning_options.get("lr"),
        encoder_weight_decay=tuning_options.get("weight_decay"),
        **components(text_source),
    )


def build_optimizer(cfg: DictConfig) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """The optimizer and scheduler factories, tried once on a stand-in parameter so bad settings (a negative
    learning rate, a missing argument) fail now rather than when `fit` starts."""
    optimizer = instantiate_checked(cfg.model.optimizer)
    scheduler = instantiate_checked(cfg.model.scheduler) if cfg.model.get("scheduler") else None
    try:
        trial = optimizer(params=[nn.Parameter(torch.zeros(1))])
        if scheduler is not None:
            steps = (
                {"num_training_steps": 10} if "num_training_steps" in inspect.signature(scheduler).parameters else {}
            )
            scheduler(optimizer=trial, **steps)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"model.optimizer / model.scheduler: {err}") from None
    return optimizer, scheduler
