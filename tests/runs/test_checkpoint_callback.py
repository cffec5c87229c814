"""`last.ckpt` after every epoch, also the epochs that wrote no best checkpoint (Lightning 2.6 skips those)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from lmrec.runs.checkpoint_callback import EveryEpochLastCheckpoint


class _Worsening(pl.LightningModule):
    """val/loss rises every epoch after the first: only epoch 0 is ever the best."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, index):
        return (self.weight - 1.0).pow(2).sum()

    def validation_step(self, batch, index):
        self.log("val/loss", float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(2, 1), batch_size=1)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(torch.zeros(1, 1), batch_size=1)


def _fit(callback: ModelCheckpoint, root) -> dict:
    trainer = pl.Trainer(
        default_root_dir=root, max_epochs=3, callbacks=[callback], logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(_Worsening())
    return torch.load(root / "ck" / "last.ckpt", weights_only=True)


def test_last_checkpoint_is_the_newest_epoch_even_without_improvement(tmp_path):
    options = {"monitor": "val/loss", "mode": "min", "save_top_k": 1, "save_last": True, "filename": "best"}
    ours = _fit(EveryEpochLastCheckpoint(dirpath=tmp_path / "a" / "ck", **options), tmp_path / "a")
    lightning = _fit(ModelCheckpoint(dirpath=tmp_path / "b" / "ck", **options), tmp_path / "b")
    assert lightning["epoch"] == 0  # what this class exists for: Lightning's last.ckpt stays at the best epoch
    assert ours["epoch"] == 2 and ours["global_step"] == 6
    assert sorted(p.name for p in (tmp_path / "a" / "ck").iterdir()) == ["best.ckpt", "last.ckpt"]
    # its state sits under ModelCheckpoint's key, with the best checkpoint still epoch 0's
    (key,) = [k for k in ours["callbacks"] if k.startswith("ModelCheckpoint")]
    assert ours["callbacks"][key]["best_model_path"].endswith("best.ckpt")
    assert ours["callbacks"][key]["best_model_score"].item() == 0.0
