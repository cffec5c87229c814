"""`next_item`: sequential recommendation. A user is their chronological history; the model predicts what comes next.

Training (SASRec, Kang & McAuley 2018): each row is a window of a user's training sequence; a causal sequence
tower (`model/user_tower=sequence`) reads it once and every position predicts the next item, so all prefixes
train in one pass. `task.train_windows=all` cuts a long history into consecutive windows of `max_length` + 1 items
(every training item after the first is a target once); `last` keeps only the most recent window, as the
original SASRec does. The objectives are the ranking task's, per position:

* `softmax` with `full` negatives (the default; RecBole's SASRec `loss_type=CE`), `in_batch` (the batch's
  distinct target items, with logQ) or `sampled` ones;
* `bce` with one `sampled` negative is the original SASRec loss; `bpr` works too. Sampled negatives are drawn as
  in the ranking task: uniform over the items the user has no training interaction with, or by popularity.

Evaluation is the ranking task's full ranking (sampled ranking, buckets, ties, AUC included), with the user given
as the sequence of everything before the split: the training items for validation, training + validation items
for test. With a temporal leave-one-out split (`data.split.strategy=temporal_loo`) this is the standard protocol:
the second-to-last item is validation, the last is test. `task.mask_history` says whether items already in that
input sequence are excluded from the ranking (true, lmrec's default, as the ranking task masks seen items) or may be
recommended again (false, as RecBole's sequential evaluation does). A user whose input sequence is empty (no
earlier interaction) cannot be scored by a sequence model: such users are left out of that split's metrics, and
their count is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from lmrec.config.schema import POSITIVE, OneOf, Option, check_values
from lmrec.data.batches import NegativeSampledBatches, RankingEvalBatches
from lmrec.data.interactions import InteractionSplits
from lmrec.data.sequences import UserSequences, sequences_of, training_windows
from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError
from lmrec.tasks.objectives import candidate_softmax_loss
from lmrec.tasks.ranking import SEEN_BEFORE, RankingTask

log = logging.getLogger(__name__)

TRAIN_WINDOWS = ("all", "last")


class SequenceScorer(Protocol):
    """What next-item training needs from a model beyond the ranking `Scorer`."""

    def encode_sequences(
        self,
        sequences: torch.Tensor,
        *item_groups: torch.Tensor,
        users: torch.Tensor | None = None,
        item_vectors: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]: ...
    def all_item_vectors(self) -> torch.Tensor: ...
    def score_vectors(
        self, u: torch.Tensor, users: torch.Tensor, item_vectors: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor: ...
    def score_vectors_against(
        self, u: torch.Tensor, users: torch.Tensor, item_vectors: torch.Tensor, items: torch.Tensor | None = None
    ) -> torch.Tensor: ...
    def score_all_items(self, users: torch.Tensor, sequences: torch.Tensor | None = None) -> torch.Tensor: ...


class NextItemBatches(Dataset):
    """Training windows: `inputs` [B, L] and `targets` [B, L] (the item after each input position; PAD where there
    is none), plus `negatives` [B, L, n] when the objective samples them."""

    def __init__(
        self,
        sequences: UserSequences,
        users: torch.Tensor,
        ends: torch.Tensor,
        max_length: int,
        negatives: NegativeSampler | None = None,
    ) -> None:
        self.sequences, self.users, self.ends, self.max_length = sequences, users, ends, max_length
        self.negatives = negatives

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        users = self.users[idx]
        window = self.sequences.window(users, self.ends[idx], self.max_length + 1)
        inputs, targets = window[:, :-1], window[:, 1:].clone()
        targets[inputs < 0] = -1  # the first item of a window is read, never predicted from nothing
        batch = {"users": users, "inputs": inputs, "targets": targets}
        if self.negatives is not None:
            batch["negatives"] = self.negatives(users, targets.shape[1])
        return batch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])


class NegativeSampler:
    """[B, L, n] negatives for a batch of users: uniform over each user's non-training items, or by popularity."""

    def __init__(self, splits: InteractionSplits, count: int, popularity: torch.Tensor | None) -> None:
        users, items, _ = splits.tensors("train")
        self.count, self.popularity = count, popularity
        self.uniform = None if popularity is not None else NegativeSampledBatches(users, items, splits.num_items, count)

    def __call__(self, users: torch.Tensor, length: int) -> torch.Tensor:
        if self.uniform is not None:
            return self.uniform.sample(users.repeat_interleave(length)).view(len(users), length, self.count)
        draws = torch.multinomial(self.popularity, len(users) * length * self.count, replacement=True)
        return draws.view(len(users), length, self.count)


class SequenceInputs:
    """Evaluation extra: each batch user's input sequence (their items before the evaluated split)."""

    def __init__(self, sequences: UserSequences, max_length: int) -> None:
        self.sequences, self.max_length = sequences, max_length

    def __call__(self, users: torch.Tensor) -> dict[str, Any]:
        return {"sequences": self.sequences.last(users, self.max_length)}


class NextItemTask(RankingTask):
    """Next-item prediction over chronological sequences; full-ranking evaluation of the next item."""

    config_options = (
        *RankingTask.config_options,
        Option("max_length", (POSITIVE,), note="items of history a sequence tower reads"),
        Option("train_windows", (OneOf(TRAIN_WINDOWS),)),
    )

    def __init__(
        self,
        max_length: int = 50,
        train_windows: str = "all",
        loss: str = "softmax",
        negatives: str | None = "full",
        num_negatives: int = 1,
        temperature: float = 1.0,
        **ranking: Any,
    ) -> None:
        check_values(self.config_options, {"max_length": max_length, "train_windows": train_windows}, "task")
        super().__init__(
            loss=loss, negatives=negatives, num_negatives=num_negatives, temperature=temperature, **ranking
        )
        self.max_length, self.train_windows = int(max_length), train_windows

    def check_components(self, components: Mapping[str, nn.Module] | None) -> None:
        """Refuse a model whose user tower cannot read a sequence, before any encoding."""
        tower = (components or {}).get("user_tower")
        if tower is None or not getattr(tower, "reads_sequences", False):
            raise ConfigError(
                "task=next_item needs a sequence user tower (model/user_tower=sequence); fitted baselines and the "
                "id/history towers do not read order; compare them with task=ranking on the same split"
            )

    # -- training ------------------------------------------------------------------------------------------
    def train_dataset(self, splits: InteractionSplits) -> Dataset:
        sequences = sequences_of(splits, ("train",))
        users, ends = training_windows(sequences.lengths(), self.max_length, self.train_windows == "all")
        if len(users) == 0:
            raise ConfigError("task=next_item: no user has two training interactions, so nothing can be predicted")
        _, items, _ = splits.tensors("train")
        counts = torch.bincount(items, minlength=splits.num_items).double()
        popularity = None
        if self.negatives == "sampled" and self.sampler == "popularity":
            popularity = (counts.pow(self.popularity_exponent) * (counts > 0)).float()
            self.log_q = (popularity / popularity.sum()).log()
        else:
            self.log_q = (counts / counts.sum()).log().float()
        sampler = NegativeSampler(splits, self.num_negatives, popularity) if self.negatives == "sampled" else None
        log.info(
            "next_item: %d training windows of up to %d items from %d users (train_windows=%s)",
            len(users),
            self.max_length + 1,
            int((sequences.lengths() >= 2).sum()),
            self.train_windows,
        )
        return NextItemBatches(sequences, users, ends, self.max_length, sampler)

    def training_loss(self, model: SequenceScorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs, targets, users = batch["inputs"], batch["targets"], batch["users"]
        predicted = targets >= 0
        row_users = users.unsqueeze(1).expand_as(targets)[predicted]
        target = targets[predicted]
        if self.negatives == "full":
            catalogue = model.all_item_vectors()
            states, _ = model.encode_sequences(inputs, users=users, item_vectors=catalogue)
            logits = model.score_vectors_against(states[predicted], row_users, catalogue)
            return candidate_softmax_loss(logits.float(), target, self.temperature)
        if self.negatives == "in_batch":
            candidates, column = torch.unique(target, return_inverse=True)
            states, (vectors,) = model.encode_sequences(inputs, candidates, users=users)
            logits = model.score_vectors_against(states[predicted], row_users, vectors, candidates)
            log_q = self._log_q(target.device)[candidates] if self.logq else None
            return candidate_softmax_loss(logits.float(), column, self.temperature, log_q)
        negatives = batch["negatives"][predicted]  # [M, n]
        states, (positive_vectors, negative_vectors) = model.encode_sequences(inputs, target, negatives, users=users)
        u = states[predicted]
        positive = model.score_vectors(u, row_users, positive_vectors, target).float()
        n = negatives.shape[1]
        negative = model.score_vectors(
            u.unsqueeze(1).expand(-1, n, -1), row_users.unsqueeze(1).expand(-1, n), negative_vectors, negatives
        ).float()
        return self.sampled_loss(positive, negative, target, negatives)

    # -- evaluation ----------------------------------------------------------------------------------------
    def eval_dataset(self, splits: InteractionSplits, split: str) -> Dataset:
        before: Sequence[str] = SEEN_BEFORE[split]
        sequences = sequences_of(splits, before)
        targets = splits.matrix(split)
        without_input = (targets.row_lengths() > 0) & (sequences.lengths() == 0)
        if bool(without_input.any()):
            log.warning(
                "next_item: %d %s users have no earlier interaction to read; they are left out of %s metrics",
                int(without_input.sum()),
                split,
                split,
            )
            targets = keep_rows(targets, ~without_input)
        seen = splits.matrix(*before)
        exclude = seen if self.mask_history else CSRMatrix.empty(seen.shape)
        extras = [*self.eval_extras(splits, split, targets, exclude), SequenceInputs(sequences, self.max_length)]
        return RankingEvalBatches(targets, exclude, split=split, extras=extras)

    def eval_scores(self, model: SequenceScorer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model.score_all_items(batch["users"], sequences=batch["sequences"])

    def user_input_reader(self, splits: InteractionSplits, split: str) -> Callable[[torch.Tensor], dict[str, Any]]:
        """The users and their sequences of everything before `split`, as the evaluation gives them."""
        sequences = SequenceInputs(sequences_of(splits, SEEN_BEFORE[split]), self.max_length)
        return lambda users: {"users": users, **sequences(users)}


def keep_rows(matrix: CSRMatrix, keep: torch.Tensor) -> CSRMatrix:
    """`matrix` with the rows where `keep` is False emptied."""
    rows = torch.repeat_interleave(torch.arange(matrix.shape[0]), matrix.row_lengths())
    chosen = keep[rows]
    return CSRMatrix.from_pairs(rows[chosen], matrix.col[chosen], matrix.shape)
