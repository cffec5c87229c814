"""The LightningModule of the two-tower recommender: wires item tower, user tower, head and task, and owns the loop.

The loop reads here, step by step: `training_step` (the task's loss plus a tuning mode's regularisation),
`validation_step` / `test_step` (the task updates its metrics from this module's scores), the per-pass hooks that
compute every item's vector once, and `configure_optimizers` (parameter groups from the tuning mode,
`lmrec.encoders.tuning.base`). What a checkpoint leaves out (a tuned encoder's frozen base weights) is decided in
`lmrec.runs.checkpoints`. Fitted baselines have a module of their own (`lmrec.model.baselines.module`) that the same
tasks evaluate through the same `Scorer` protocol.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lmrec.encoders.tuning.base import TrainableEncoder, encoder_parameter_groups
from lmrec.model.evaluation import TaskEvaluation
from lmrec.model.optimization import Optimization
from lmrec.tasks.base import Task


class RecommenderModule(TaskEvaluation):
    """Scores (user, item) pairs with towers + head; the task turns scores into a loss and metrics."""

    def __init__(
        self, item_tower: nn.Module, user_tower: nn.Module, head: nn.Module, task: Task, optimization: Optimization
    ) -> None:
        super().__init__(task)
        self.item_tower = item_tower
        self.user_tower = user_tower
        self.head = head
        self.optimization = optimization
        self._frozen_item_vectors: torch.Tensor | None = None
        # Modules whose pretrained weights train, found by their protocol (any tower may hold one); found once (a
        # plain tuple, so not registered twice): training_step and every batch end consult it. Their frozen base
        # weights stay out of checkpoints (lmrec.runs.checkpoints), so Lightning must accept their absence when it
        # restores one.
        self._encoder_modules = tuple(module for module in self.modules() if isinstance(module, TrainableEncoder))
        self.strict_loading = not self._encoder_modules

    def trainable_encoders(self) -> tuple[TrainableEncoder, ...]:
        return self._encoder_modules

    # -- scoring (what tasks call) ---------------------------------------------------------------------------
    def item_vectors(self, *index_groups: torch.Tensor) -> list[torch.Tensor]:
        """Item vectors for several index tensors, computing each distinct item once and scattering it back.

        With a tuned encoder this is what makes end-to-end training affordable: a batch of 1024 rows with 4
        negatives each names a few thousand item slots but far fewer distinct items, and the user tower's
        history items overlap them too. During evaluation the vectors of the whole catalogue are already there.
        """
        if self._frozen_item_vectors is not None:
            return [self._frozen_item_vectors[group] for group in index_groups]
        flat = torch.cat([group.reshape(-1) for group in index_groups])
        distinct, inverse = torch.unique(flat, return_inverse=True)
        vectors = self.item_tower(distinct)[inverse]
        pieces = vectors.split([group.numel() for group in index_groups])
        return [
            piece.reshape(*group.shape, vectors.shape[-1]) for piece, group in zip(pieces, index_groups, strict=True)
        ]

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits for aligned (user, item) pairs; what training losses and the rating metrics need.

        The items of the pairs and the items the user tower looks up are encoded in one pass."""
        lookup = self.user_tower.lookup(users)
        item_vectors, looked_up = self.item_vectors(items, lookup.items)
        return self.head(self.user_tower(users, lookup, looked_up), item_vectors, users, items)

    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Logits [users, items] against one shared candidate set (in-batch negatives), encoded together with the
        items the user tower looks up."""
        lookup = self.user_tower.lookup(users)
        item_vectors, looked_up = self.item_vectors(items, lookup.items)
        return self.head.score_all(self.user_tower(users, lookup, looked_up), item_vectors, users, items)

    def all_item_vectors(self) -> torch.Tensor:
        """Every item's vector: computed once per evaluation pass, or now (full softmax during training)."""
        if self._frozen_item_vectors is not None:
            return self._frozen_item_vectors
        return self.item_tower.all_items()

    def score_all_items(self, users: torch.Tensor, sequences: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [users, all items] for full-ranking evaluation, from item vectors computed once per pass.

        `sequences` (left-padded item indices, next-item prediction) replaces what the user tower would look up:
        the user is then the given history, read by a sequence tower."""
        item_vectors = self.all_item_vectors()
        return self.head.score_all(self.user_vectors(users, sequences, item_vectors), item_vectors, users)

    def user_vectors(
        self, users: torch.Tensor, sequences: torch.Tensor | None = None, item_vectors: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The user tower's vectors [users, dim] of training users (read from `sequences` when given), as
        `score_all_items` scores them (also what `lmrec-export embeddings=true` writes)."""
        item_vectors = self.all_item_vectors() if item_vectors is None else item_vectors
        if sequences is None:
            lookup = self.user_tower.lookup(users)
            return self.user_tower(users, lookup, item_vectors[lookup.items])
        lookup = self.user_tower.lookup_sequences(sequences, users)
        return self.user_tower.pool(self.user_tower.encode(lookup, item_vectors[lookup.items]), lookup)

    @property
    def reads_history(self) -> bool:
        """Whether the user tower reads a user from their items (`lmrec.tasks.test_input`)."""
        return bool(getattr(self.user_tower, "reads_history", False))

    def score_histories(self, histories: list[torch.Tensor], users: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [len(histories), all items] for users given by their items (oldest first): the user tower
        reads them as it reads a training user's (`UserTower.lookup_histories`). `users`: the training users they
        belong to (their per-user bias is added; None for new users, served by `lmrec.serving` without one)."""
        item_vectors = self.all_item_vectors()
        lookup = self.user_tower.lookup_histories(histories)
        return self.head.score_all(self.user_tower(None, lookup, item_vectors[lookup.items]), item_vectors, users)

    # -- sequences (next-item prediction; the user tower must be a sequence tower) ------------------------------
    def encode_sequences(
        self,
        sequences: torch.Tensor,
        *item_groups: torch.Tensor,
        users: torch.Tensor | None = None,
        item_vectors: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The user tower's output at every position of left-padded `sequences` [B, L, dim], and the vectors of
        further item groups (targets, negatives, candidates), every distinct item encoded once per step.
        `item_vectors` (the whole catalogue's, already computed for a full softmax) is indexed instead."""
        lookup = self.user_tower.lookup_sequences(sequences, users)
        if item_vectors is not None:
            return self.user_tower.encode(lookup, item_vectors[lookup.items]), [item_vectors[g] for g in item_groups]
        looked_up, *vectors = self.item_vectors(lookup.items, *item_groups)
        return self.user_tower.encode(lookup, looked_up), vectors

    def score_vectors(
        self, u: torch.Tensor, users: torch.Tensor, item_vectors: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor:
        """Logits of aligned (user vector, item vector) pairs (any matching leading shape)."""
        return self.head(u, item_vectors, users, items)

    def score_vectors_against(
        self, u: torch.Tensor, users: torch.Tensor, item_vectors: torch.Tensor, items: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits [rows of u, rows of item_vectors]; `items` names those rows (None: the whole catalogue)."""
        return self.head.score_all(u, item_vectors, users, items)

    # -- training ------------------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        for encoder in self.trainable_encoders():
            encoder.on_fit_start(int(self.trainer.estimated_stepping_batches))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.task.training_loss(self, batch)
        for encoder in self.trainable_encoders():
            extra = encoder.regularization()
            if extra is not None:
                loss = loss + extra
        # `train/loss` is the epoch mean (the name checkpoints and sweeps use); `train/loss_step` the per-step curve.
        size = len(batch["users"])
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, batch_size=size)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        for encoder in self.trainable_encoders():
            encoder.after_optimizer_step(self.global_step)

    def configure_optimizers(self) -> Any:
        steps = lambda: int(self.trainer.estimated_stepping_batches)  # noqa: E731 - asked only by a step schedule
        return self.optimization.configure(self.parameter_groups(), steps)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups, as the tuning mode sets them (a tuned encoder's own rate and decay)."""
        return encoder_parameter_groups(
            self, self.trainable_encoders(), self.optimization.encoder_lr, self.optimization.encoder_weight_decay
        )

    # -- evaluation (lmrec.model.evaluation): every item's vector once per pass -----------------------------------
    def start_evaluation(self) -> None:
        """Every item's vector, once per evaluation pass (a tuned encoder re-encodes the catalogue here); every
        batch then only indexes it."""
        with torch.inference_mode():
            self._frozen_item_vectors = self.item_tower.all_items()

    def end_evaluation(self) -> None:
        """Back to training: item vectors come from the towers again."""
        self._frozen_item_vectors = None

    def parameter_counts(self) -> dict[str, float]:
        """Total and trainable parameters: half of the "at what cost" question."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"total": total, "trainable": trainable, "trainable_pct": 100.0 * trainable / max(1, total)}
