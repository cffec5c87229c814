"""The LightningModule of a fitted baseline: fitted when `fit` starts, then validated, checkpointed, tested and
logged by the same trainer, callbacks and task evaluation as a neural model.

The trainer runs one epoch of a single batch that does nothing (`FittedModelBuilder.trainer_options`), so
Lightning's own loop produces the validation metric, the best checkpoint and the run files; the entry points do
not know which kind of model they run.
"""

from __future__ import annotations

from typing import Any

import torch

from lmrec.data.sparse import CSRMatrix
from lmrec.errors import ConfigError
from lmrec.model.baselines.base import FittedBaseline
from lmrec.model.evaluation import TaskEvaluation
from lmrec.tasks.base import Task


class BaselineModule(TaskEvaluation):
    """Wraps a `FittedBaseline` in the `Scorer` protocol the tasks use."""

    def __init__(self, baseline: FittedBaseline, task: Task, name: str = "baseline", num_items: int = 0) -> None:
        super().__init__(task)
        self.num_items = int(num_items)  # the catalogue's size, for users given by their items
        rating_link = getattr(task, "logits_of", None)
        if rating_link is not None and not baseline.predicts_ratings:
            raise ConfigError(f"model={name} ranks items and predicts no ratings; use task=ranking")
        self.baseline = baseline
        self._to_logits = rating_link if baseline.predicts_ratings else None
        self.automatic_optimization = False
        # ModelCheckpoint saves only after an optimizer step, so the empty epoch takes one step of a no-op optimizer
        # over a tensor that is not a parameter (nothing of it reaches the state dict or the checkpoint).
        self._step_marker = torch.zeros(0, requires_grad=True)

    # -- fitting: one pass, when fit starts --------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self.baseline.fit()
        for callback in self.trainer.checkpoint_callbacks:  # the only checkpoint is the best: no `last` copy of it
            callback.save_last = False

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.optimizers().step()

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD([self._step_marker], lr=0.0)

    # -- scoring (the `Scorer` protocol of lmrec.tasks.base) -----------------------------------------------------
    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        scores = self.baseline.score_pairs(users, items)
        return self._to_logits(scores) if self._to_logits is not None else scores

    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        scores = self.baseline.score_all(users)
        return self._to_logits(scores) if self._to_logits is not None else scores

    def score_candidates(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.score_all_items(users)[:, items]

    @property
    def reads_history(self) -> bool:
        """Whether the score reads the user's items and can read others (`lmrec.tasks.test_input`)."""
        return bool(self.baseline.uses_history and self.baseline.new_users is None)

    def score_histories(self, histories: list[torch.Tensor], users: torch.Tensor | None = None) -> torch.Tensor:
        """Scores [len(histories), all items] of users given only by their items, as `score_all_items` scores a
        training user (`FittedBaseline.score_histories`; a fitted model keeps no per-user term, so `users` is not
        read)."""
        lengths = torch.tensor([len(h) for h in histories], dtype=torch.long)
        rows = torch.repeat_interleave(torch.arange(len(histories)), lengths)
        items = torch.cat(histories).cpu() if histories else torch.empty(0, dtype=torch.long)
        shape = (len(histories), self.num_items)
        scores = self.baseline.score_histories(CSRMatrix.from_pairs(rows, items, shape))
        return self._to_logits(scores) if self._to_logits is not None else scores

    def parameter_counts(self) -> dict[str, float]:
        """A fitted model has no trained parameters; its fitted state (buffers) is what it costs to keep."""
        fitted = sum(b.numel() for b in self.baseline.buffers())
        return {"total": fitted, "trainable": 0, "trainable_pct": 0.0, "fitted_values": fitted}
