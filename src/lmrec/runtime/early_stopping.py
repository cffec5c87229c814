"""Early stopping that waits for a validation to judge: the early stopping of `callbacks=default`.

Lightning's EarlyStopping (strict) raises when its metric is missing, which it is in every run that stops before
its first validation: `trainer.limit_val_batches=0`, or `trainer.max_steps` / `max_time` reached inside the first
epoch. Such a run has nothing to stop early on; it ends, and `lmrec-train` tests its last weights and says so. Once a
validation has run, a missing metric is a misconfiguration again and raises as before.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping


class ValidatedEarlyStopping(EarlyStopping):
    """EarlyStopping whose check starts with the first validation that is not a sanity check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._validated = False

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = True
        super().on_validation_end(trainer, pl_module)

    def _validate_condition_metric(self, logs: dict[str, torch.Tensor]) -> bool:
        if not self._validated and logs.get(self.monitor) is None:
            return False  # no validation yet: nothing to judge
        return super()._validate_condition_metric(logs)

    @property
    def state_key(self) -> str:
        """EarlyStopping's own key: checkpoints written with Lightning's class resume into this one."""
        return super().state_key.replace(type(self).__qualname__, EarlyStopping.__qualname__, 1)
