"""Text the model never saw, read the way the model reads an item's or a user's text; and items' neighbours.

A text tower maps an encoder vector into the model's item space (`projection(dropout(v))`, dropout off in eval),
so a typed text becomes an item the catalogue does not hold: its neighbours are `similar(text=...)`, and a user
who is that one item is `recommend(text=...)` (read by the history or sequence tower as a one-item history). A
user-text tower reads the text as a user's profile directly.

A frozen run's checkpoint holds its item vectors, not its encoder; the encoder is loaded only when a text is
asked for, from the run's `model.encoder`, and checked against the run's own table on a few items first, so a
text is never compared with vectors another encoder made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from omegaconf import OmegaConf
from torch import nn

from lmrec.encoders.text_sources import FrozenTextTable, TunedTextEncoder
from lmrec.errors import RequestError

if TYPE_CHECKING:
    from lmrec.encoders.text_encoder import TextEncoder
    from lmrec.serving.loaded import LoadedRun

#: How many catalogue items the loaded encoder must reproduce (to this tolerance) before it reads a query.
CHECKED_ITEMS = 8
TOLERANCE = 1e-3


class TextQueries:
    """Text queries and item neighbours of one loaded run."""

    def __init__(self, loaded: LoadedRun) -> None:
        self.loaded = loaded
        self._encoder: TextEncoder | None = None
        self._checked: set[int] = set()  # the tables the encoder has been checked against

    # -- the model's parts ----------------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def baseline(self) -> Any:
        return getattr(self.model, "baseline", None)

    def item_text_source(self) -> nn.Module | None:
        """The item text vectors the model reads (a tower's or ease_text's), or None for an ID-only model."""
        tower = getattr(self.model, "item_tower", None)
        text_tower = getattr(tower, "text", None)
        if text_tower is not None and hasattr(text_tower, "projection"):  # a hybrid tower's text part
            return text_tower.text
        if text_tower is not None:
            return text_tower
        return getattr(self.baseline, "text", None)

    # -- neighbours -----------------------------------------------------------------------------------------------
    def neighbours(self, item: int) -> torch.Tensor:
        """How close every item is to `item` [items]: cosine in a tower model's item space, a fitted model's own
        item-item weights (EASE's B row, ItemKNN's neighbour list, ALS's factor cosine)."""
        if self.baseline is not None:
            try:
                return self.baseline.item_neighbours(item).float().cpu()
            except NotImplementedError as err:
                raise RequestError(f"model {self._name()} has no item neighbours: {err}") from None
        vectors = nn.functional.normalize(self.model.all_item_vectors().float(), dim=1)
        return vectors @ vectors[item]

    def item_similarity(self, text: str) -> torch.Tensor:
        """Cosine of a text, mapped as a new item, to every item [items]."""
        query, catalogue = self._text_as_item(text)
        return nn.functional.normalize(catalogue, dim=1) @ nn.functional.normalize(query, dim=0)

    # -- users given by a text ------------------------------------------------------------------------------------
    def user_scores(self, text: str) -> torch.Tensor:
        """Scores [items] of a user given by a text: a user-text tower reads it as the user's profile; a history or
        sequence tower reads it as a one-item history of a new item with that text."""
        user_tower = getattr(self.model, "user_tower", None)
        if user_tower is None:
            raise RequestError(
                f"model {self._name()} scores users from their items, not from a text; give history=[item ids]"
            )
        with torch.inference_mode():
            item_vectors = self.model.all_item_vectors()
            if type(user_tower).__name__ == "TextUserTower":
                raw = self.encode(text, user_tower.text, users=True)
                user = user_tower.projection(raw.unsqueeze(0))
            elif user_tower.new_users is None:
                query, _ = self._text_as_item(text)
                extended = torch.cat([item_vectors, query.unsqueeze(0)])
                lookup = user_tower.lookup_histories([torch.tensor([len(item_vectors)])])
                user = user_tower(None, lookup, extended[lookup.items])
            else:
                raise RequestError(f"model {self._name()} cannot read a new user: {user_tower.new_users}")
            return self.model.head.score_all(user, item_vectors, None)[0]

    # -- encoding -------------------------------------------------------------------------------------------------
    def _text_as_item(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(the text as an item vector in the space the catalogue's vectors live in, the catalogue's vectors)."""
        source = self.item_text_source()
        if source is None:
            raise RequestError(f"model {self._name()} has no text item tower: it cannot place a text among its items")
        raw = self.encode(text, source)
        with torch.inference_mode():
            tower = getattr(self.model, "item_tower", None)
            if tower is None:  # ease_text: its item space for text is the text vectors themselves
                return raw, source.all_items().float()
            if hasattr(tower, "ids"):  # hybrid: a new item has no learned ID vector, so its ID part is zero
                text_part = tower.text.projection(raw.unsqueeze(0))
                query = tower._merge(text_part, torch.zeros_like(text_part))[0]
            else:
                query = tower.projection(raw.unsqueeze(0))[0]
            return query, self.model.all_item_vectors().float()

    def encode(self, text: str, source: nn.Module, users: bool = False) -> torch.Tensor:
        """The encoder vector [text width] of `text`, by the encoder behind `source` (the users' text source when
        `users`)."""
        if isinstance(source, TunedTextEncoder):
            encoder = source.encoder
        elif isinstance(source, FrozenTextTable):
            data = self.loaded.datamodule
            encoder = self._frozen_encoder(source, data.user_texts if users else data.item_texts)
        else:
            raise RequestError(f"model {self._name()} reads text through {type(source).__name__}; no text query")
        return encoder.encode([text], show_progress=False)[0].to(self._device())

    def _frozen_encoder(self, table: FrozenTextTable, texts: list[str]) -> TextEncoder:
        """The run's configured encoder, loaded once and checked against the table `texts` made."""
        if self._encoder is None:
            from lmrec.encoders.configured import encoder_options
            from lmrec.encoders.text_encoder import TextEncoder

            options, _ = encoder_options(self.loaded.cfg.model.encoder)
            options.pop("threads", None)
            try:
                encoder = TextEncoder(**options)
            except (OSError, ValueError) as err:
                name = OmegaConf.select(self.loaded.cfg, "model.encoder.name_or_path")
                raise RequestError(f"cannot load the run's encoder {name!r} to read a text: {err}") from None
            self._encoder = encoder
        self._check_reproduces(self._encoder, table, texts)
        return self._encoder

    def _check_reproduces(self, encoder: TextEncoder, table: FrozenTextTable, texts: list[str]) -> None:
        if id(table) in self._checked:
            return
        count = min(CHECKED_ITEMS, len(texts))
        fresh = encoder.encode(texts[:count], show_progress=False)
        saved = table.embeddings[:count].float().cpu()
        gap = float(((fresh - saved).norm(dim=1) / saved.norm(dim=1).clamp_min(1e-12)).max()) if count else 0.0
        if gap > TOLERANCE:
            raise RequestError(
                f"the encoder {encoder.name_or_path!r} on this machine does not reproduce the run's item vectors "
                f"(relative gap {gap:.2g} > {TOLERANCE}); its files changed since the run, so a text would not be "
                "comparable with the catalogue"
            )
        self._checked.add(id(table))

    def _device(self) -> torch.device:
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

    def _name(self) -> str:
        return str(OmegaConf.select(self.loaded.cfg, "model.name", default="") or type(self.model).__name__)
