"""Item towers: each turns item indices into vectors of the model's width.

An item tower is an `nn.Module` with `forward(items)` and `all_items()`: full-ranking evaluation and history-based
user towers need every item's vector at once, and computing it once per evaluation is what keeps ranking
vectorised. A tower that reads item text names a `text_source` constructor argument; the builder then gives it a
frozen cached table or a trainable encoder, as `model/tuning` says (`lmrec.encoders.text_sources`).
"""

from __future__ import annotations

import torch
from torch import nn

from lmrec.errors import ConfigError
from lmrec.model.text_adaptors import build_adaptor


def _id_embedding(num: int, dim: int, init_std: float) -> nn.Embedding:
    table = nn.Embedding(num, dim)
    nn.init.normal_(table.weight, std=init_std)
    return table


class IdItemTower(nn.Module):
    """One learned vector per item: classic collaborative filtering."""

    def __init__(self, num_items: int, dim: int, init_std: float = 0.05) -> None:
        super().__init__()
        self.embedding = _id_embedding(num_items, dim, init_std)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.embedding(items)

    def all_items(self) -> torch.Tensor:
        return self.embedding.weight


class TextItemTower(nn.Module):
    """Item text vectors (from a frozen cached table or a trainable encoder) with an optional learned adaptor.

    The text source is injected by the builder according to `model.tuning`: a `FrozenTextTable` holds the cached
    embeddings as a persistent buffer so a checkpoint is self-contained; a `TunedTextEncoder` runs BERT on the
    items it is given (the module hands it each batch's distinct items only). The adaptor (`lmrec.model.text_adaptors`)
    maps the text vector, after `dropout`, to `model.dim`; it is the `projection` attribute whatever its kind, so a
    linear one keeps the parameter names `projection.weight` / `projection.bias` of runs trained before the others.
    """

    def __init__(
        self,
        text_source: nn.Module,
        dim: int,
        project: bool = True,
        dropout: float = 0.0,
        init_std: float | None = None,
        adaptor: str = "linear",
        experts: int = 8,
    ) -> None:
        """`init_std`: Normal(0, init_std) adaptor weights (and zero bias for `linear`), as BERT and SASRec initialise
        linear maps (e.g. experiment=sasrec with a text item tower); None keeps torch's default initialisation.
        `adaptor`: `linear`, `whitening` or `moe` (with `experts` whitenings); used only with `project=true`."""
        super().__init__()
        self.text = text_source
        text_dim = int(text_source.dim)
        if project:
            self.projection: nn.Module = build_adaptor(adaptor, text_dim, dim, experts, init_std)
        elif adaptor != "linear":
            raise ConfigError(
                f"model.item_tower.adaptor={adaptor!r} needs model.item_tower.project=true (project=false passes the "
                "text vectors on unchanged)"
            )
        elif text_dim != dim:
            raise ConfigError(
                f"model.item_tower.project=false needs model.dim ({dim}) equal to the encoder width ({text_dim})"
            )
        else:
            self.projection = nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.projection(self.dropout(self.text(items)))

    def all_items(self) -> torch.Tensor:
        return self.projection(self.dropout(self.text.all_items()))


class HybridItemTower(nn.Module):
    """Text vector plus an ID embedding: text carries cold items, the ID learns what text cannot say."""

    def __init__(
        self,
        text_source: nn.Module,
        num_items: int,
        dim: int,
        combine: str = "sum",
        dropout: float = 0.0,
        init_std: float = 0.05,
        adaptor: str = "linear",
        experts: int = 8,
    ) -> None:
        """`init_std` initialises the ID embedding; `adaptor` / `experts` choose the text part's map (TextItemTower)."""
        super().__init__()
        if combine not in ("sum", "concat"):
            raise ConfigError(f"model.item_tower.combine={combine!r}; expected 'sum' or 'concat'")
        self.text = TextItemTower(text_source, dim, project=True, dropout=dropout, adaptor=adaptor, experts=experts)
        self.ids = IdItemTower(num_items, dim, init_std)
        self.combine = combine
        self.mix = nn.Linear(2 * dim, dim) if combine == "concat" else None

    def _merge(self, text: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return text + ids if self.mix is None else self.mix(torch.cat([text, ids], dim=-1))

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self._merge(self.text(items), self.ids(items))

    def all_items(self) -> torch.Tensor:
        return self._merge(self.text.all_items(), self.ids.all_items())
