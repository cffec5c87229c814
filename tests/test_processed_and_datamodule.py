from __future__ import annotations

import logging

import pandas as pd
import pytest
import torch

from lmrec.data.datamodule import RecDataModule
from lmrec.data.processed import load_processed
from lmrec.data.splits import TEST, TRAIN, VAL
from lmrec.encoders.resolve import resolve_model_dir
from lmrec.loggers import redact_secrets


def _module(bundled_data, cache, **kwargs) -> RecDataModule:
    return RecDataModule(root=str(bundled_data), cache_dir=str(cache), max_users=40, **kwargs)


def test_processed_tables_are_cached_and_keyed_by_options(bundled_data, tmp_path, caplog):
    first = _module(bundled_data, tmp_path).prepare()
    with caplog.at_level(logging.INFO, logger="lmrec.data.processed"):
        second = _module(bundled_data, tmp_path).prepare()
    assert not first.cache_hit and second.cache_hit and "cache hit" in caplog.text
    assert first.interactions.equals(second.interactions) and first.items.equals(second.items)
    reseeded = _module(bundled_data, tmp_path, seed=7).prepare()
    assert not reseeded.cache_hit
    assert not reseeded.interactions["split"].equals(first.interactions["split"])
    assert len(list((tmp_path / "processed").iterdir())) == 2


def test_full_bundled_data_statistics(bundled_data, tmp_path):
    module = RecDataModule(root=str(bundled_data), cache_dir=None)
    stats = module.statistics()
    assert (stats["users"], stats["items"], stats["interactions"]) == (610, 9742, 100836)
    assert stats["train_interactions"] == 80669 and stats["val_interactions"] == 10084
    assert stats["density"] == pytest.approx(100836 / (610 * 9742))
    assert module.item_texts[0] == (
        "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, fun"
    )


def test_ranking_batches_mask_seen_items_and_never_sample_positives(bundled_data, tmp_path):
    module = _module(bundled_data, tmp_path, task_kind="ranking", num_negatives=50, batch_size=4096)
    module.prepare()
    train = module.interaction_matrix(TRAIN)
    train_pairs = set(zip(*[t.tolist() for t in _pairs(train)], strict=True))
    batch = next(iter(module.train_dataloader()))
    drawn = zip(batch["users"].repeat_interleave(50).tolist(), batch["negatives"].reshape(-1).tolist(), strict=True)
    assert sum(pair in train_pairs for pair in drawn) == 0
    test_batch = next(iter(module.test_dataloader()))
    seen = module.interaction_matrix(TRAIN, VAL).dense_rows(test_batch["users"])
    held_out = module.interaction_matrix(TEST).dense_rows(test_batch["users"])
    assert torch.equal(test_batch["exclude"], seen) and torch.equal(test_batch["targets"], held_out)
    assert test_batch["targets"].any(1).all()


def _pairs(matrix):
    rows = torch.repeat_interleave(torch.arange(matrix.shape[0]), matrix.row_lengths())
    return rows, matrix.col


def test_bad_datamodule_options_raise_before_loading(bundled_data, tmp_path):
    with pytest.raises(ValueError, match="task kind"):
        RecDataModule(root=str(bundled_data), cache_dir=None, task_kind="clicks")
    with pytest.raises(ValueError, match="data.batch_size"):
        RecDataModule(root=str(bundled_data), cache_dir=None, batch_size=0)
    with pytest.raises(FileNotFoundError, match="ratings.csv"):
        load_processed(tmp_path, None, {"template": ["{title}"]})


def test_unknown_hub_model_offline_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="could not load encoder 'no-such-org/no-such-model'"):
        resolve_model_dir("no-such-org/no-such-model")


def test_secrets_never_reach_loggers():
    cfg = {"logger": {"wandb": {"api_key": "abc", "project": "p"}}, "hub_token": "t", "items": [{"password": "x"}]}
    assert redact_secrets(cfg) == {
        "logger": {"wandb": {"api_key": "***", "project": "p"}},
        "hub_token": "***",
        "items": [{"password": "***"}],
    }


def test_negative_sampling_is_uniform_over_non_positives():
    from lmrec.data.batches import NegativeSampledBatches

    users = torch.tensor([0, 0, 0, 1, 2, 2])
    items = torch.tensor([0, 2, 3, 5, 1, 4])
    sampler = NegativeSampledBatches(users, items, num_items=6, num_negatives=20000)
    torch.manual_seed(0)
    draws = sampler.sample(torch.tensor([0, 1, 2]))
    for user, allowed in enumerate([{1, 4, 5}, {0, 1, 2, 3, 4}, {0, 2, 3, 5}]):
        counts = torch.bincount(draws[user], minlength=6).float() / 20000
        assert set(torch.nonzero(counts).squeeze(1).tolist()) == allowed
        assert torch.allclose(counts[sorted(allowed)], torch.full((len(allowed),), 1 / len(allowed)), atol=0.02)
    with pytest.raises(ValueError, match="every item"):
        NegativeSampledBatches(torch.tensor([0, 0]), torch.tensor([0, 1]), num_items=2, num_negatives=1)


def test_concurrent_builders_of_one_cache_entry_both_succeed(tmp_path):
    from lmrec.atomic import publish_dir

    target = tmp_path / "entry"
    with publish_dir(target) as slow:  # both are built before either publishes
        (slow / "done").write_text("slow")
        with publish_dir(target) as fast:
            (fast / "done").write_text("fast")
        assert (target / "done").read_text() == "fast"
    assert (target / "done").read_text() == "fast"  # the first to publish wins; the later copy is discarded
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_damaged_processed_entry_is_rebuilt(bundled_data, tmp_path):
    first = _module(bundled_data, tmp_path).prepare()
    (entry,) = (tmp_path / "processed").iterdir()
    (entry / "interactions.parquet").write_bytes(b"not parquet")
    again = _module(bundled_data, tmp_path).prepare()
    assert not again.cache_hit and again.interactions.equals(first.interactions)
    assert _module(bundled_data, tmp_path).prepare().cache_hit


def test_checksum_mismatch_stops_loading(bundled_data, tmp_path):
    from lmrec.data.checksums import ChecksumError

    root = tmp_path / "data"
    root.mkdir()
    for name in ("ratings.csv", "movies.csv", "tags.csv", "SHA256SUMS"):
        (root / name).write_bytes((bundled_data / name).read_bytes())
    (root / "ratings.csv").write_text((root / "ratings.csv").read_text().replace("1,1,4.0,", "1,1,3.0,", 1))
    with pytest.raises(ChecksumError, match="ratings.csv"):
        RecDataModule(root=str(root), cache_dir=str(tmp_path / "cache")).prepare()
    RecDataModule(root=str(root), cache_dir=None, verify_checksums=False).prepare()  # explicit opt-out


def test_each_exported_file_is_its_split_with_original_ids(bundled_data, tmp_path):
    from lmrec.data.export import export_split

    data = _module(bundled_data, tmp_path).prepare()
    paths = export_split(data, tmp_path / "split")
    for name, path in paths.items():
        exported = pd.read_csv(path)
        part = data.split(name)
        assert len(exported) == len(part)
        assert exported["user"].tolist() == data.users["user_id"].to_numpy()[part["user_idx"]].tolist()
        assert exported["item"].tolist() == data.items["item_id"].to_numpy()[part["item_idx"]].tolist()


def test_loaders_serve_their_own_split(bundled_data, tmp_path):
    module = _module(bundled_data, tmp_path, eval_batch_size=100000, batch_size=100000)
    data = module.prepare()
    for loader, name in (
        (module.train_dataloader(), "train"),
        (module.val_dataloader(), "val"),
        (module.test_dataloader(), "test"),
    ):
        (batch,) = list(loader)
        part = data.split(name)
        assert sorted(zip(batch["users"].tolist(), batch["items"].tolist(), strict=True)) == sorted(
            zip(part["user_idx"].tolist(), part["item_idx"].tolist(), strict=True)
        )
