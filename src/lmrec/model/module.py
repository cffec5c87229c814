"""The LightningModule: wires item tower, user tower, head and task, and owns the loop. Nothing else."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lmrec.encoders.tuning.base import TrainableEncoder
from lmrec.errors import CheckpointError
from lmrec.model.evaluation import EvaluatedModule
from lmrec.tasks.base import Task


class RecommenderModule(EvaluatedModule):
    """Scores (user, item) pairs with towers + head; the task turns scores into a loss and metrics.

    Evaluation (metrics, validation and test steps) is `EvaluatedModule`'s, shared with the fitted baselines.
    """

    def __init__(
        self,
        item_tower: nn.Module,
        user_tower: nn.Module,
        head: nn.Module,
        task: Task,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        monitor: str | None = None,
        encoder_lr: float | None = None,
        encoder_weight_decay: float | None = None,
    ) -> None:
        super().__init__(task)
        self.item_tower = item_tower
        self.user_tower = user_tower
        self.head = head
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.monitor = monitor
        self.encoder_lr = encoder_lr
        self.encoder_weight_decay = encoder_weight_decay
        self._frozen_item_vectors: torch.Tensor | None = None
        # Modules whose pretrained weights train, found by their protocol (any tower may hold one). Checkpoints
        # leave their frozen base weights out (they come from the encoder folder), so Lightning must accept their
        # absence when it restores one; `load_trained_weights` checks it exactly. Found once (a plain tuple, so not
        # registered twice): training_step and every batch end consult it.
        self._trainable_encoders = tuple(
            (name, module) for name, module in self.named_modules() if isinstance(module, TrainableEncoder)
        )
        self._encoder_modules = tuple(module for _, module in self._trainable_encoders)
        self.strict_loading = not self._trainable_encoders

    def trainable_encoders(self) -> tuple[TrainableEncoder, ...]:
        return self._encoder_modules

    def encoder_weights_sha256(self) -> list[str]:
        """Identity of each trainable encoder's pretrained weights, in module order (recorded in checkpoints)."""
        return [encoder.base_weights_sha256() for encoder in self.trainable_encoders()]

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
        if sequences is None:
            lookup = self.user_tower.lookup(users)
            u = self.user_tower(users, lookup, item_vectors[lookup.items])
        else:
            lookup = self.user_tower.lookup_sequences(sequences, users)
            u = self.user_tower.pool(self.user_tower.encode(lookup, item_vectors[lookup.items]), lookup)
        return self.head.score_all(u, item_vectors, users)

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

    # -- training --------------------------------------------------------------------------------------------
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

    # -- evaluation: item vectors are computed once per pass, not once per batch --------------------------------
    def start_evaluation(self) -> None:
        # A tuned encoder re-encodes the catalogue here, once per evaluation; every batch then only indexes.
        with torch.inference_mode():
            self._frozen_item_vectors = self.item_tower.all_items()

    def end_evaluation(self) -> None:
        self._frozen_item_vectors = None

    # -- optimisation ----------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameter_groups())
        if self.scheduler_factory is None:
            return optimizer
        scheduler: dict[str, Any] = {}
        if "num_training_steps" in inspect.signature(self.scheduler_factory).parameters:
            # Warmup/decay schedules are defined over optimizer steps, which only the trainer knows.
            steps = int(self.trainer.estimated_stepping_batches)
            scheduler = {
                "scheduler": self.scheduler_factory(optimizer=optimizer, num_training_steps=steps),
                "interval": "step",
            }
        else:
            scheduler = {"scheduler": self.scheduler_factory(optimizer=optimizer)}
        # `monitor` lets metric-driven schedulers (ReduceLROnPlateau) watch the same metric as checkpointing.
        if self.monitor:
            scheduler["monitor"] = self.monitor
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Towers and head use the optimizer's settings; a tuned encoder gets its own learning rate and weight
        decay (pretrained weights want a far smaller step), with no decay on biases and LayerNorm weights, as is
        standard for BERT fine-tuning."""
        encoder_ids = {id(p) for encoder in self.trainable_encoders() for p in encoder.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in encoder_ids]
        groups: list[dict[str, Any]] = [{"params": rest, "name": "model"}]
        decay, no_decay = [], []
        for encoder in self.trainable_encoders():
            for name, p in encoder.named_parameters():
                if p.requires_grad:
                    (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
        overrides: dict[str, Any] = {} if self.encoder_lr is None else {"lr": float(self.encoder_lr)}
        if decay:
            wd = {} if self.encoder_weight_decay is None else {"weight_decay": float(self.encoder_weight_decay)}
            groups.append({"params": decay, "name": "encoder", **overrides, **wd})
        if no_decay:
            groups.append({"params": no_decay, "name": "encoder_no_decay", **overrides, "weight_decay": 0.0})
        return [g for g in groups if g["params"]]

    # -- checkpoints: a tuned encoder's frozen base weights stay out -------------------------------------------
    def frozen_encoder_keys(self) -> set[str]:
        """State-dict keys of encoder weights that do not train: identical to the encoder folder's, so not saved."""
        return {
            f"{prefix}.{key}" for prefix, encoder in self._trainable_encoders for key in encoder.frozen_state_keys()
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state_dict"]
        for key in self.frozen_encoder_keys():
            state.pop(key, None)
        if self._trainable_encoders:
            checkpoint["encoder_weights_sha256"] = self.encoder_weights_sha256()

    def load_trained_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's state dict; only the frozen encoder weights (taken from the encoder folder) may be
        missing from it."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        absent = sorted(set(missing) - self.frozen_encoder_keys())
        if absent or unexpected:
            raise CheckpointError(
                f"checkpoint does not fit this model: missing {absent[:5]}{'...' if len(absent) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
            )

    def parameter_counts(self) -> dict[str, float]:
        """Total and trainable parameters: half of the "at what cost" question."""
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"total": total, "trainable": trainable, "trainable_pct": 100.0 * trainable / max(1, total)}
