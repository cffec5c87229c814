"""Build the model a config describes, feeding each component the data-derived arguments it asks for.

Component configs are `_partial_` Hydra targets; sizes and matrices that only the data knows (number of users,
the item text embeddings, the training history) are injected here by parameter name, so a new tower or head
only has to name the argument it wants.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from lmrec.data.datamodule import RecDataModule
from lmrec.encoders.embedding_cache import load_or_encode
from lmrec.module import RecommenderModule

log = logging.getLogger(__name__)

#: Config keys that describe a component to humans and other configs but are not constructor arguments.
META_KEYS = ("name", "monitor", "monitor_mode")


def instantiate_component(cfg: DictConfig, available: dict[str, Callable[[], Any]]) -> Any:
    """Instantiate `cfg`, passing each injectable argument its target's signature names (computed lazily)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    for key in META_KEYS:
        plain.pop(key, None)
    accepted = inspect.signature(get_class(plain["_target_"])).parameters
    built = instantiate(plain, _convert_="all")
    extra = {name: make() for name, make in available.items() if name in accepted and name not in plain}
    return built(**extra) if plain.get("_partial_") else built


def item_text_embeddings(cfg: DictConfig, datamodule: RecDataModule) -> torch.Tensor:
    encoder_cfg = OmegaConf.to_container(cfg.model.encoder, resolve=True)
    batch_size = int(encoder_cfg.pop("batch_size", 128))
    device = "cuda" if cfg.trainer.get("accelerator") == "gpu" and torch.cuda.is_available() else "cpu"
    embeddings, _ = load_or_encode(
        encoder_cfg,
        datamodule.item_texts,
        datamodule.template_id,
        datamodule.cache_dir or _no_cache_dir(),
        batch_size=batch_size,
        device=device,
    )
    return embeddings


def _no_cache_dir():
    raise ValueError("paths.cache_dir is empty; the frozen text tower needs a cache folder for item embeddings")


def build_model(cfg: DictConfig, datamodule: RecDataModule) -> RecommenderModule:
    datamodule.prepare()
    cache: dict[str, Any] = {}

    def once(name: str, make: Callable[[], Any]) -> Callable[[], Any]:
        def get() -> Any:
            if name not in cache:
                cache[name] = make()
            return cache[name]

        return get

    available = {
        "num_users": lambda: datamodule.num_users,
        "num_items": lambda: datamodule.num_items,
        "dim": lambda: int(cfg.model.dim),
        "text_embeddings": once("text", lambda: item_text_embeddings(cfg, datamodule)),
        "history": once("history", datamodule.train_history),
    }
    task = instantiate_component(cfg.task, {})
    head = instantiate_component(cfg.model.head, available)
    user_tower = instantiate_component(cfg.model.user_tower, available)
    item_tower = instantiate_component(cfg.model.item_tower, available)
    optimizer = instantiate(cfg.model.optimizer)
    scheduler = instantiate(cfg.model.scheduler) if cfg.model.get("scheduler") else None
    return RecommenderModule(item_tower, user_tower, head, task, optimizer=optimizer, scheduler=scheduler)
