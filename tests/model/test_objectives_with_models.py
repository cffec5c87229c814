"""Every ranking objective trains every item and user tower (and a tuned encoder) on a slice of the bundled data;
in-batch negatives reuse the items the step encodes anyway."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import build_model, compose_train, prepared_data

OBJECTIVES = {
    "bpr": ["task.loss=bpr"],
    "bce_popularity": ["task.loss=bce", "task.sampler=popularity"],
    "sampled_softmax": ["task.loss=softmax", "task.sampler=popularity", "task.num_negatives=16"],
    "in_batch": ["task.loss=softmax", "task.negatives=in_batch", "task.learn_temperature=true"],
    "full": ["task.loss=softmax", "task.negatives=full", "task.temperature=0.5"],
}


def _build(tmp_path, tiny_bert_dir, *overrides: str):
    cfg = compose_train(
        [
            "data.max_users=15",
            "task=ranking",
            "data.batch_size=128",
            f"model.encoder.name_or_path={tiny_bert_dir}",
            "model.encoder.max_length=16",
            *overrides,
        ],
        tmp_path / "out",
        tmp_path / "cache",
    )
    datamodule = prepared_data(cfg)
    torch.manual_seed(0)
    return build_model(cfg, datamodule, datamodule.task), datamodule


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
@pytest.mark.parametrize(
    "towers",
    [
        ["model/item_tower=id", "model/user_tower=id"],
        ["model/item_tower=text", "model/user_tower=history", "model.user_tower.dropout=0.3"],
        ["model/item_tower=hybrid", "model/user_tower=id", "model/head=mlp"],
    ],
    ids=["id-id", "text-history", "hybrid-mlp"],
)
def test_each_objective_trains_each_tower(tmp_path, tiny_bert_dir, objective, towers):
    model, datamodule = _build(tmp_path, tiny_bert_dir, *towers, *OBJECTIVES[objective])
    model.train()
    batch = next(iter(datamodule.train_dataloader()))
    loss = model.task.training_loss(model, batch)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    trained = [p for p in model.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in trained if p is not model.task.log_temperature)
    if objective == "in_batch":
        assert model.task.log_temperature.grad is not None


def test_in_batch_negatives_with_a_tuned_encoder_encode_each_distinct_item_once(tmp_path, tiny_bert_dir):
    model, datamodule = _build(
        tmp_path, tiny_bert_dir, "model/tuning=lora", "model/user_tower=history", *OBJECTIVES["in_batch"]
    )
    model.train()
    calls: list[int] = []
    model.item_tower.text.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    batch = next(iter(datamodule.train_dataloader()))
    model.task.training_loss(model, batch).backward()
    looked_up = model.user_tower.lookup(batch["users"]).items  # the history the tower reads (dropout off: 0.0)
    assert calls == [len(torch.unique(torch.cat([batch["items"], looked_up])))]
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    assert lora and any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)
