from __future__ import annotations

import pandas as pd
import pytest
import torch

from lmrec.data.datamodule import RecDataModule
from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.movielens import MovieLensLatest
from lmrec.tasks.ranking import RankingTask
from lmrec.tasks.rating import RatingTask


def _module(bundled_data, cache, task=None, **kwargs) -> RecDataModule:
    source = MovieLensLatest(bundled_data)
    task = task or RatingTask(source.rating_scale)
    return RecDataModule(source, task, cache_dir=str(cache) if cache else None, max_users=40, **kwargs)


def test_full_bundled_data_statistics(bundled_data, tmp_path):
    module = RecDataModule(MovieLensLatest(bundled_data))
    stats = module.statistics()
    assert (stats["users"], stats["items"], stats["interactions"]) == (610, 9742, 100836)
    assert stats["train_interactions"] == 80669 and stats["val_interactions"] == 10084
    assert stats["density"] == pytest.approx(100836 / (610 * 9742))
    assert module.item_texts[0] == (
        "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, fun"
    )


def test_ranking_batches_mask_seen_items_and_never_sample_positives(bundled_data, tmp_path):
    module = _module(bundled_data, tmp_path, RankingTask(loss="bpr", num_negatives=50), batch_size=4096)
    module.prepare()
    train = module.splits.matrix("train")
    train_pairs = set(zip(*[t.tolist() for t in _pairs(train)], strict=True))
    batch = next(iter(module.train_dataloader()))
    drawn = zip(batch["users"].repeat_interleave(50).tolist(), batch["negatives"].reshape(-1).tolist(), strict=True)
    assert sum(pair in train_pairs for pair in drawn) == 0
    test_batch = next(iter(module.test_dataloader()))
    seen = module.splits.matrix("train", "val").dense_rows(test_batch["users"])
    held_out = module.splits.matrix("test").dense_rows(test_batch["users"])
    assert torch.equal(test_batch["exclude"], seen) and torch.equal(test_batch["targets"], held_out)
    assert test_batch["targets"].any(1).all()


def _pairs(matrix):
    rows = torch.repeat_interleave(torch.arange(matrix.shape[0]), matrix.row_lengths())
    return rows, matrix.col


def test_bad_datamodule_options_raise_before_loading(bundled_data, tmp_path):
    source = MovieLensLatest(bundled_data)
    with pytest.raises(ValueError, match="data.batch_size"):
        RecDataModule(source, batch_size=0)
    with pytest.raises(ValueError, match="data.split.strategy='kfold'"):
        RecDataModule(source, split={"strategy": "kfold"})
    with pytest.raises(ValueError, match=r"uses field \{plot\}, which data source .*MovieLensLatest does not"):
        RecDataModule(source, text={"template": ["{title}", "Plot: {plot}"]})
    with pytest.raises(DataValidationError, match="ratings.csv: file not found"):
        RecDataModule(MovieLensLatest(tmp_path)).prepare()


def test_checksum_mismatch_stops_loading(bundled_data, tmp_path):
    from lmrec.data.io.checksums import ChecksumError

    root = tmp_path / "data"
    root.mkdir()
    for name in ("ratings.csv", "movies.csv", "tags.csv", "SHA256SUMS"):
        (root / name).write_bytes((bundled_data / name).read_bytes())
    (root / "ratings.csv").write_text((root / "ratings.csv").read_text().replace("1,1,4.0,", "1,1,3.0,", 1))
    with pytest.raises(ChecksumError, match="ratings.csv"):
        RecDataModule(MovieLensLatest(root), cache_dir=str(tmp_path / "cache")).prepare()
    RecDataModule(MovieLensLatest(root), verify_checksums=False).prepare()  # explicit opt-out


def test_each_exported_file_is_its_split_with_original_ids(bundled_data, tmp_path):
    from lmrec.runs.split_export import export_split

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


def test_data_card_figures_match_a_direct_count_of_the_files(bundled_data):
    module = RecDataModule(MovieLensLatest(bundled_data), split={"strategy": "cold_items", "cold_share": 0.1})
    card = module.data_card()
    fig = card["figures"]
    ratings = pd.read_csv(bundled_data / "ratings.csv")
    movies = pd.read_csv(bundled_data / "movies.csv")
    per_user = ratings.groupby("userId").size()
    per_item = ratings.groupby("movieId").size().reindex(movies["movieId"], fill_value=0)
    assert fig["interactions_per_user"]["median"] == per_user.median() and fig["interactions_per_user"]["max"] == 2698
    assert fig["interactions_per_item"]["mean"] == pytest.approx(per_item.mean())
    assert fig["items_without_interactions"] == int((per_item == 0).sum()) == 18
    words = [len(text.split()) for text in module.item_texts]
    assert fig["text_length_unit"] == "words" and fig["text_length"]["max"] == max(words)
    frame = module.data.interactions
    train_items = set(frame.loc[frame["split"] == 0, "item_idx"])
    test_items = set(frame.loc[frame["split"] == 2, "item_idx"])
    assert fig["splits"]["test"]["cold_items"] == len(test_items - train_items) >= round(0.05 * 9724)
    assert fig["splits"]["train"]["cold_items"] == 0
    assert card["protocol"]["split"] == "cold_items" and card["protocol"]["split_options"]["cold_share"] == 0.1
    assert card["protocol"]["source"]["source"] == "lmrec.data.sources.movielens.MovieLensLatest"
