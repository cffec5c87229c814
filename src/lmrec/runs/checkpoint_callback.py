"""The checkpoint callback of `callbacks=default`: Lightning's ModelCheckpoint, with `last.ckpt` after every epoch.

Lightning 2.6 writes `last.ckpt` only at the end of an epoch that also wrote a best checkpoint. A run killed after
a few epochs without improvement then resumes from the last improvement and trains those epochs again (to the same
metrics: the replay draws what the killed run drew, but it is wasted time, up to `patience` epochs). Writing it
after every validation makes a resume start from the newest epoch.
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class EveryEpochLastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose `save_last` also covers the epochs that wrote no best checkpoint."""

    # ModelCheckpoint saves in one of these two hooks (at the end of the training epoch when validation runs once
    # per epoch, as in lmrec's configs; at the end of validation otherwise). Whether it was due is decided before
    # the parent saves: afterwards "already saved at this step" would always say no.
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer)
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_if_skipped(trainer, due)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer)
        super().on_validation_end(trainer, pl_module)
        self._save_last_if_skipped(trainer, due)

    def _save_last_if_skipped(self, trainer: pl.Trainer, due: bool) -> None:
        if due and self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's own key: checkpoints of runs from before this class resume into it, and
        `lmrec.runs.checkpoints.tracked_checkpoints` finds its state under the name it has always had."""
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)
