"""Impression logs: what a user was shown at one moment, and which of those candidates they clicked.

An impression is the unit the MIND leaderboard evaluates (each impression's candidates are ranked and scored on
their own), so it is kept whole here rather than flattened into (user, item) rows. `Impressions` holds a log in the
dataset's own ids, as a source read it (candidates laid out CSR, with the file line of every impression so that
later checks can name it); `index_impressions` maps it onto a run's user and item indices and returns the
evaluation dataset a task serves (`ImpressionBatches`).

Any source that can produce impression logs offers them through `impressions(split)` (the `ImpressionLog`
protocol); the impression task finds it by that method, not by the source's class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from lmrec.config.arguments import BuildFacts, provides
from lmrec.data.io.errors import DataValidationError
from lmrec.errors import ConfigError, DataError

__all__ = ["SINGLE_CLASS", "ImpressionBatches", "ImpressionLog", "Impressions", "index_impressions"]

log = logging.getLogger(__name__)

#: What to do with an impression whose candidates are all clicked or all not clicked (AUC is undefined there).
SINGLE_CLASS = ("error", "skip")


@dataclass
class Impressions:
    """One split's impressions, in the dataset's ids.

    Attributes:
        path: the behaviors file they were read from (errors name it).
        lines: int64 [n], the file line of each impression.
        impression_ids: int64 [n], the file's impression id.
        users: object [n], the user id of each impression.
        timestamps: int64 [n], Unix seconds.
        items: object, the item ids the codes below point into (a vocabulary: MINDlarge's training log holds
            about 80 million candidates, which as Python strings alone would take gigabytes).
        offsets: int64 [n + 1]; impression j's candidates are `candidates[offsets[j]:offsets[j + 1]]`.
        candidates: int32 [P], each candidate as a position in `items`, in file order.
        labels: int8 [P], 1 clicked, 0 shown and not clicked (-1: unlabelled, the MINDlarge test split).
        history_offsets, history: the impression's click history (int32 positions in `items`), laid out like the
            candidates: what a history-reading user tower could take as the user's state at that moment.
    """

    path: Path
    lines: np.ndarray
    impression_ids: np.ndarray
    users: np.ndarray
    timestamps: np.ndarray
    items: np.ndarray
    offsets: np.ndarray
    candidates: np.ndarray
    labels: np.ndarray
    history_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    history: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.lines)

    def candidate_ids(self) -> np.ndarray:
        """The candidates as item ids (object [P])."""
        return self.items[self.candidates]

    def history_ids(self) -> np.ndarray:
        return self.items[self.history]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def select(self, keep: np.ndarray) -> Impressions:
        """The impressions where the boolean mask `keep` is True, in order."""
        rows = np.flatnonzero(keep)
        cand = _gather_ranges(self.offsets, rows)
        hist = _gather_ranges(self.history_offsets, rows)
        return Impressions(
            path=self.path,
            lines=self.lines[rows],
            impression_ids=self.impression_ids[rows],
            users=self.users[rows],
            timestamps=self.timestamps[rows],
            items=self.items,
            offsets=_offsets(np.diff(self.offsets)[rows]),
            candidates=self.candidates[cand],
            labels=self.labels[cand],
            history_offsets=_offsets(np.diff(self.history_offsets)[rows]),
            history=self.history[hist],
        )


@runtime_checkable
class ImpressionLog(Protocol):
    """A source that offers impression logs: `impressions("val")` and `impressions("test")`; `drop_invalid` as in
    `Source.read` (bad rows dropped and counted instead of raising)."""

    def impressions(self, split: str, drop_invalid: bool = False) -> Impressions: ...


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _gather_ranges(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions of the elements of the given CSR rows, row after row (no Python loop over rows)."""
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    total = int(lengths.sum())
    within = np.arange(total, dtype=np.int64) - np.repeat(_offsets(lengths)[:-1], lengths)
    return np.repeat(starts, lengths) + within


class ImpressionBatches(Dataset):
    """Indexed impressions; a batch is its impressions' users and all their candidates, flattened.

    `__getitems__` returns `users` [B], `items` [P] (the candidates), `labels` [P], `segments` [P] (which of the B
    impressions each candidate belongs to, in order) and `tiebreak` [P]: a seeded random key per candidate, fixed
    when the dataset is built, so a random tie policy breaks ties identically in every run and for any batch size.
    """

    def __init__(
        self,
        users: torch.Tensor,
        offsets: torch.Tensor,
        items: torch.Tensor,
        labels: torch.Tensor,
        tiebreak: torch.Tensor,
        skipped: dict[str, int] | None = None,
        ids: torch.Tensor | None = None,
    ) -> None:
        self.users, self.offsets, self.items, self.labels, self.tiebreak = users, offsets, items, labels, tiebreak
        self.skipped = dict(skipped or {})
        #: The file's impression id of each impression (per-impression output names them; default: their order).
        self.ids = ids if ids is not None else torch.arange(len(users))

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        starts, lengths = self.offsets[idx], self.offsets[idx + 1] - self.offsets[idx]
        segments = torch.repeat_interleave(torch.arange(len(idx)), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        positions = starts[segments] + torch.arange(int(lengths.sum())) - first[segments]
        return {
            "users": self.users[idx],
            "impressions": self.ids[idx],
            "items": self.items[positions],
            "labels": self.labels[positions],
            "segments": segments,
            "tiebreak": self.tiebreak[positions],
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])


def _indexer(ids: np.ndarray) -> pd.Index:
    index = pd.Index(ids)
    if not index.is_unique:
        raise DataError("the run's id table holds an id twice; impressions cannot be mapped onto it")
    return index


def index_impressions(
    impressions: Impressions,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    seed: int | tuple[int, ...],
    single_class: str = "error",
) -> ImpressionBatches:
    """Map `impressions` onto a run's indices (`user_ids[i]` is user index i, `item_ids[j]` item index j).

    Impressions the run cannot score are left out, counted and logged: a user or a candidate the run's tables do
    not hold (e.g. removed by `data.max_users` or a filter). An impression whose candidates are all clicked or all
    unclicked has no AUC (the official MIND evaluation, through sklearn's `roc_auc_score`, stops on it), so it is
    an error naming its file line, or with `single_class="skip"` left out and counted like the others.
    """
    if single_class not in SINGLE_CLASS:
        raise ConfigError(f"task.single_class={single_class!r}; expected one of {', '.join(map(repr, SINGLE_CLASS))}")
    lengths = impressions.lengths()
    users = _indexer(user_ids).get_indexer(impressions.users)
    items = _indexer(item_ids).get_indexer(impressions.items)[impressions.candidates]
    segment = np.repeat(np.arange(len(impressions)), lengths)
    unknown_item = np.bincount(segment[items < 0], minlength=len(impressions)) > 0
    clicks = np.bincount(segment, weights=impressions.labels, minlength=len(impressions))
    one_class = (clicks == 0) | (clicks == lengths)
    skipped: dict[str, int] = {}
    reasons = (
        ("no candidates", lengths == 0),
        ("user not in the run's data", users < 0),
        ("candidate not in the run's items", unknown_item),
        ("only one class (all clicked or none)", one_class),
    )
    bad = np.zeros(len(impressions), dtype=bool)
    for reason, mask in reasons:
        new = mask & ~bad
        if reason.startswith("only one class") and new.any() and single_class == "error":
            row = int(np.argmax(new))
            what = "every candidate clicked" if clicks[row] == lengths[row] else "no candidate clicked"
            raise DataValidationError(
                impressions.path,
                int(impressions.lines[row]),
                "impressions",
                f"impression {impressions.impression_ids[row]} has {what}: its AUC is undefined (the official MIND "
                "evaluation cannot score it); set task.single_class=skip to leave such impressions out, counted",
            )
        if new.any():
            skipped[reason] = int(new.sum())
        bad |= new
    if skipped:
        log.warning(
            "%s: %d of %d impressions left out of the evaluation (%s)",
            impressions.path,
            int(bad.sum()),
            len(impressions),
            ", ".join(f"{n} {reason}" for reason, n in skipped.items()),
        )
    if bad.all():
        raise DataError(f"{impressions.path}: none of its {len(impressions)} impressions of this split can be scored")
    keep_pairs = ~bad[segment]
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(len(impressions.candidates))[keep_pairs]
    return ImpressionBatches(
        users=torch.as_tensor(users[~bad], dtype=torch.long),
        offsets=torch.as_tensor(_offsets(lengths[~bad])),
        items=torch.as_tensor(items[keep_pairs], dtype=torch.long),
        labels=torch.as_tensor(impressions.labels[keep_pairs].astype(np.int64)),
        tiebreak=torch.as_tensor(tiebreak),
        skipped=skipped,
        ids=torch.as_tensor(np.asarray(impressions.impression_ids)[~bad].astype(np.int64)),
    )


@provides("impressions")
def _impression_log(facts: BuildFacts) -> ImpressionLog:
    """The source itself, for a task that evaluates impressions (read when a split is first evaluated, not now); a
    source without impression logs is a ConfigError naming it."""
    source = facts.source
    if not isinstance(source, ImpressionLog):
        raise ConfigError(
            f"this task evaluates impressions, but data.source ({source.name}) has none; use a source that offers "
            "them (e.g. data=mind_small)"
        )
    return source
