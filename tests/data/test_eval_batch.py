"""`data.eval_batch_size=auto`: ranking evaluation batches sized by a memory budget."""

from __future__ import annotations

import pytest

from lmrec.data.eval_batch import users_per_eval_batch
from lmrec.errors import ConfigError
from tests.helpers import compose_train, prepared_data


def test_users_per_batch_follows_the_budget():
    # 1000 items: 4 bytes of score + 2 dense bool rows = 6,000 bytes a user; 1 MB holds 174 users.
    assert users_per_eval_batch(1000, 1) == 2**20 // 6000 == 174
    # Two workers prefetch 4 batches, each with its own pair of dense rows: 4 + 2 * 5 = 14 bytes per item.
    assert users_per_eval_batch(1000, 1, num_workers=2) == 2**20 // 14_000
    assert users_per_eval_batch(10**9, 1) == 1  # never below one user


def test_auto_eval_batches_fit_the_budget(tmp_path, bundled_data):
    overrides = [
        "task=ranking",
        "data.eval_batch_size=auto",
        "data.eval_memory_mb=8",
        f"paths.data_dir={bundled_data.parent}",
    ]
    datamodule = prepared_data(compose_train(overrides, tmp_path / "out", tmp_path / "cache"))
    datamodule.setup("fit")
    batch = next(iter(datamodule.val_dataloader()))
    expected = users_per_eval_batch(datamodule.num_items, 8)
    assert len(batch["users"]) == expected == 8 * 2**20 // (datamodule.num_items * 6)
    with pytest.raises(ConfigError, match="eval_batch_size"):
        prepared_data(compose_train([*overrides[:1], "data.eval_batch_size=-3"], tmp_path / "o2", tmp_path / "cache"))
