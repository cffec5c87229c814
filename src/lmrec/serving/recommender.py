"""Recommendations from a trained run: for a training user, for a user given by items or by a text, an item's
neighbours, and the evidence behind a score.

A training user is scored exactly as the evaluation scores them (`Task.user_input_reader` + `Task.eval_scores`: for a
next-item model, their sequence of training and validation items), and their training and validation items are
masked as seen, so the top-k a user is served is the top-k the test metrics ranked. A new user is read the way the
model reads a training user (`score_histories`: the history tower's mean, the sequence tower's sequence, EASE's
X_u B, ItemKNN's sum of similarities); a model that cannot read one says why in one line (`RequestError`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from lmrec.data.interactions import InteractionSplits
from lmrec.errors import RequestError
from lmrec.serving.loaded import LoadedRun, describe, load_run
from lmrec.serving.text_queries import TextQueries

#: The most items a request may ask for, and the longest history it may give (a service validates against these).
MAX_K = 1000
MAX_HISTORY = 10_000


@dataclass
class Recommendation:
    """One recommended item: its rank (1 = first), the dataset's id, the model's score, and a title to show."""

    rank: int
    item_id: Any
    score: float
    title: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recommender:
    """Everything a trained run can answer; build it with `load`."""

    def __init__(self, loaded: LoadedRun) -> None:
        self.loaded = loaded
        data = loaded.datamodule.prepare()
        self.splits: InteractionSplits = loaded.datamodule.splits
        self.users = pd.Index(data.users["user_id"])
        self.items = pd.Index(data.items["item_id"])
        self.titles = _titles(data.items)
        self.seen = self.splits.matrix("train", "val")  # what a training user has already met at test time
        self.text = TextQueries(loaded)
        self._test_inputs: Callable[[torch.Tensor], dict[str, Any]] | None = None

    @property
    def model(self) -> Any:
        return self.loaded.model

    def describe(self) -> dict[str, Any]:
        return describe(self.loaded)

    # -- ids ------------------------------------------------------------------------------------------------------
    def user_index(self, user: Any) -> int:
        position = _position(self.users, user)
        if position is None:
            raise RequestError(f"user {user!r} is not a user of this run's data; give history=[item ids] instead")
        return position

    def item_index(self, item: Any) -> int:
        position = _position(self.items, item)
        if position is None:
            raise RequestError(f"item {item!r} is not an item of this run's catalogue")
        return position

    def item_id(self, index: int) -> Any:
        """The dataset's id of the item at row `index`."""
        return _plain(self.items[int(index)])

    def history_indices(self, history: Sequence[Any]) -> torch.Tensor:
        if not 0 < len(history) <= MAX_HISTORY:
            raise RequestError(f"history has {len(history)} items; expected 1 to {MAX_HISTORY}")
        return torch.tensor([self.item_index(item) for item in history], dtype=torch.long)

    def _ranked(
        self, scores: torch.Tensor, k: int, exclude: torch.Tensor | None, candidates: Sequence[Any] | None
    ) -> list[Recommendation]:
        """The top `k` of `scores` [items], leaving out the item rows in `exclude` and, with `candidates`, every
        item not among them."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise RequestError(f"k={k!r}; expected a whole number from 1 to {MAX_K}")
        scores = scores.detach().float()
        if candidates is not None:
            keep = torch.tensor([self.item_index(c) for c in candidates], dtype=torch.long)
            scores = torch.full_like(scores, -torch.inf).index_copy_(0, keep, scores[keep])
        else:
            scores = scores.clone()
        if exclude is not None and len(exclude):
            scores[exclude] = -torch.inf
        top = torch.topk(scores, min(k, int(torch.isfinite(scores).sum())))
        rows = top.indices.tolist()
        ids = self.items[rows].tolist()
        return [
            Recommendation(rank + 1, item_id, value, self.titles[row])
            for rank, (item_id, value, row) in enumerate(zip(ids, top.values.tolist(), rows, strict=True))
        ]

    def test_inputs(self, users: torch.Tensor) -> dict[str, Any]:
        """What the test evaluation reads for `users` (their sequences, their folded-in items), built on first use
        and kept: a service answers many requests from one run."""
        if self._test_inputs is None:
            self._test_inputs = self.loaded.task.user_input_reader(self.splits, "test")
        return self._test_inputs(users)

    def seen_items(self, user: int) -> torch.Tensor:
        """The item rows a training user has met before the test (training and validation): masked as seen."""
        return self.seen.col[self.seen.crow[user] : self.seen.crow[user + 1]]

    # -- what the run answers -------------------------------------------------------------------------------------
    @torch.inference_mode()
    def user_scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores [users, items] of training users, exactly as the test evaluation computes them."""
        self.prepare()
        batch = self.test_inputs(users)
        return self.loaded.task.eval_scores(self.model, batch)

    @torch.inference_mode()
    def history_scores(self, histories: list[torch.Tensor]) -> torch.Tensor:
        """Scores [len(histories), items] of users given by their items (oldest first)."""
        self.prepare()
        try:
            return self.model.score_histories(histories)
        except NotImplementedError as err:
            raise RequestError(
                f"this model cannot serve a user it never trained on: {err}; ask for user=<id>"
            ) from None

    def recommend(
        self,
        user: Any = None,
        history: Sequence[Any] | None = None,
        text: str | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[Any] | None = None,
    ) -> list[Recommendation]:
        """The top `k` items for a training user, a user given by items (oldest first), or a text; `exclude_seen`
        masks what the user already has (a training user's training and validation items, or the history)."""
        given = [name for name, value in (("user", user), ("history", history), ("text", text)) if value is not None]
        if len(given) != 1:
            raise RequestError(f"give exactly one of user, history or text (got {', '.join(given) or 'none'})")
        if user is not None:
            index = self.user_index(user)
            scores = self.user_scores(torch.tensor([index]))[0]
            exclude = self.seen_items(index) if exclude_seen else None
        elif history is not None:
            items = self.history_indices(history)
            scores = self.history_scores([items])[0]
            exclude = items if exclude_seen else None
        else:
            scores, exclude = self.text.user_scores(_check_text(text)), None
        return self._ranked(scores, k, exclude, candidates)

    def recommend_many(
        self, users: Sequence[Any], k: int = 10, exclude_seen: bool = True
    ) -> list[list[Recommendation]]:
        """`recommend(user=...)` for several training users, scored in one batch."""
        if not 0 < len(users) <= MAX_K:
            raise RequestError(f"users has {len(users)} entries; expected 1 to {MAX_K}")
        indices = torch.tensor([self.user_index(u) for u in users])
        scores = self.user_scores(indices)
        return [
            self._ranked(scores[row], k, self.seen_items(int(u)) if exclude_seen else None, None)
            for row, u in enumerate(indices.tolist())
        ]

    def similar(self, item: Any = None, text: str | None = None, k: int = 10) -> list[Recommendation]:
        """The items nearest `item` (itself left out) or a text, in the model's item space."""
        if (item is None) == (text is None):
            raise RequestError("give exactly one of item or text")
        self.prepare()
        if text is not None:
            return self._ranked(self.text.item_similarity(_check_text(text)), k, None, None)
        index = self.item_index(item)
        with torch.inference_mode():
            scores = self.text.neighbours(index)
        return self._ranked(scores, k, torch.tensor([index]), None)

    def explain(self, item: Any, user: Any = None, history: Sequence[Any] | None = None) -> dict[str, Any]:
        """The evidence behind `item`'s score for a user: each history item's contribution (see `explain`)."""
        from lmrec.serving.explain import explain

        if (user is None) == (history is None):
            raise RequestError("give exactly one of user or history")
        self.prepare()
        return explain(self, self.item_index(item), user, history)

    def item(self, item: Any) -> dict[str, Any]:
        """One catalogue item: its id, title and text."""
        index = self.item_index(item)
        row = self.loaded.datamodule.prepare().items.iloc[index]
        return {"item_id": self.item_id(index), "title": self.titles[index], "text": str(row.get("text", ""))}

    def prepare(self) -> None:
        """Every item's vector once, as an evaluation pass does (a tuned encoder encodes the catalogue here)."""
        start = getattr(self.model, "start_evaluation", None)
        if start is not None and getattr(self.model, "_frozen_item_vectors", 0) is None:
            start()


def load(run: str | Path, checkpoint: str = "best", data_dir: str | Path | None = None) -> Recommender:
    """A run folder, ready to answer: `load("outputs/runs/.../18-06-03-train").recommend(user=1)`."""
    return Recommender(load_run(run, checkpoint, data_dir))


def _titles(items: pd.DataFrame) -> list[str]:
    if "title" in items.columns:
        return items["title"].fillna("").astype(str).tolist()
    return [text[:80] for text in items.get("text", pd.Series([""] * len(items))).fillna("").astype(str)]


def _position(index: pd.Index, value: Any) -> int | None:
    """The row of `value` in an id index, also when the request gives a number as text or an int as a float."""
    candidates = [value]
    if isinstance(value, str) and value.lstrip("-").isdigit():
        candidates.append(int(value))
    elif isinstance(value, int | np.integer) and not isinstance(value, bool):
        candidates.append(str(value))
    for candidate in candidates:
        try:
            position = index.get_loc(candidate)
        except (KeyError, TypeError, pd.errors.InvalidIndexError):
            continue
        if isinstance(position, int | np.integer):
            return int(position)
    return None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip() or len(text) > 10_000:
        raise RequestError("text must be a non-empty string of at most 10,000 characters")
    return text
