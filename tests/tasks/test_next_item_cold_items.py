"""Inductive items in next-item prediction: on a cold-start item split, a text item tower gives items that never
occur in training a vector of their own (from their text), so they are ranked on content; an ID tower has only
an untrained embedding for them."""

from __future__ import annotations

import torch

from lmrec.data.splits import TEST, TRAIN
from tests.helpers import build_model, compose_train, prepared_data

SEQUENCE = ["experiment=sasrec", "model.user_tower.layers=1", "model.user_tower.inner=32", "task.max_length=8"]
COLD = ["data.split.strategy=cold_items", "data.split.cold_share=0.2"]


def _build(tmp_path, tiny_bert_dir, item_tower: str):
    cfg = compose_train(
        [
            "data.max_users=40",
            "data.batch_size=16",
            f"model.encoder.name_or_path={tiny_bert_dir}",
            "model.encoder.max_length=16",
            *SEQUENCE,
            *COLD,
            f"model/item_tower={item_tower}",
        ],
        tmp_path / item_tower / "out",
        tmp_path / item_tower / "cache",
    )
    datamodule = prepared_data(cfg)
    torch.manual_seed(0)
    return build_model(cfg, datamodule, datamodule.task), datamodule


def _cold_and_test_items(datamodule) -> tuple[torch.Tensor, torch.Tensor]:
    frame = datamodule.prepare().interactions
    split = frame["split"].to_numpy()
    items = frame["item_idx"].to_numpy()
    warm = set(items[split == TRAIN].tolist())
    test_items = sorted(set(items[split == TEST].tolist()))
    cold = [i for i in test_items if i not in warm]
    return torch.tensor(cold), torch.tensor(test_items)


def test_a_text_tower_gives_never_trained_items_their_text_vectors_and_ranks_them(tmp_path, tiny_bert_dir):
    model, datamodule = _build(tmp_path, tiny_bert_dir, "text")
    cold, test_items = _cold_and_test_items(datamodule)
    assert 0 < len(cold) < len(test_items)  # the test split holds cold items and warm items' later interactions
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for batch, _ in zip(datamodule.train_dataloader(), range(3), strict=False):
        optimizer.zero_grad()
        model.task.training_loss(model, batch).backward()
        optimizer.step()
    model.eval()
    tower = model.item_tower
    with torch.no_grad():
        expected = tower.projection(tower.text.all_items()[cold])  # the text map, the same for warm and cold items
        assert torch.allclose(model.all_item_vectors()[cold], expected, atol=1e-6)
        # cold items are told apart by their text: distinct vectors, not one shared "unknown item" vector
        assert torch.cdist(expected, expected).triu(1)[torch.ones(len(cold), len(cold)).triu(1).bool()].min() > 0
        model.start_evaluation()
        batch = next(iter(datamodule.test_dataloader()))
        scores = model.task.eval_scores(model, batch)
        model.end_evaluation()
    assert torch.isfinite(scores[:, cold]).all()
    assert scores[:, cold].std(dim=1).min() > 0


def test_no_cold_item_enters_a_training_window(tmp_path, tiny_bert_dir):
    """What makes the split cold for a sequence model: a cold item is never a training input or target, so an ID
    tower's row for it gets no gradient as an item the user chose; only its text can place it."""
    _, datamodule = _build(tmp_path, tiny_bert_dir, "id")
    cold, _ = _cold_and_test_items(datamodule)
    seen: set[int] = set()
    for batch in datamodule.train_dataloader():
        for key in ("inputs", "targets"):
            values = batch[key]
            seen |= set(values[values >= 0].tolist())
    assert seen and not seen & set(cold.tolist())
