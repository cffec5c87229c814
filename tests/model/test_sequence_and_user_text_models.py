"""The sequence and user-text towers built from configs on a slice of the bundled data, with a tiny random BERT:
every item tower inside the sequence tower, every next-item objective, tuned encoders, user text and its cache."""

from __future__ import annotations

import pytest
import torch

from lmrec.errors import ConfigError
from tests.helpers import build_model, compose_train, prepared_data

SEQUENCE = ["experiment=sasrec", "model.user_tower.layers=1", "model.user_tower.inner=32", "task.max_length=8"]
USER_TAGS = ["data.source.max_user_tags=3"]


def _build(tmp_path, tiny_bert_dir, *overrides: str):
    cfg = compose_train(
        [
            "data.max_users=40",
            "data.batch_size=16",
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


def _train_step(model, datamodule) -> torch.Tensor:
    model.train()
    batch = next(iter(datamodule.train_dataloader()))
    loss = model.task.training_loss(model, batch)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    return loss


CASES = {  # every objective on the ID tower; every other item tower (and a tuned encoder, the MLP head) once
    "id-full": ["model/item_tower=id"],
    "id-in_batch": ["model/item_tower=id", "task.negatives=in_batch"],
    "id-sasrec_bce": ["model/item_tower=id", "task.loss=bce", "task.negatives=sampled"],
    "id-mlp-sampled_softmax": ["model/head=mlp", "task.negatives=sampled", "task.num_negatives=4"],
    "text-frozen-full": ["model/item_tower=text"],
    "hybrid-in_batch": ["model/item_tower=hybrid", "task.negatives=in_batch"],
    "text-lora-bce": ["model/item_tower=text", "model/tuning=lora", "task.loss=bce", "task.negatives=sampled"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_next_item_trains_every_item_tower_and_objective(tmp_path, tiny_bert_dir, case):
    towers = CASES[case]
    model, datamodule = _build(tmp_path, tiny_bert_dir, *SEQUENCE, *towers)
    _train_step(model, datamodule)
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad), trained
    if "model/tuning=lora" in towers:
        assert any("lora_" in n for n in trained)
    model.eval()
    model.start_evaluation()
    batch = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        scores = model.task.eval_scores(model, batch)
    model.end_evaluation()
    assert scores.shape == (len(batch["users"]), datamodule.num_items) and torch.isfinite(scores).all()


def test_a_tuned_sequence_step_encodes_each_distinct_item_once(tmp_path, tiny_bert_dir):
    model, datamodule = _build(
        tmp_path, tiny_bert_dir, *SEQUENCE, "model/item_tower=text", "model/tuning=lora", "task.negatives=in_batch"
    )
    calls: list[int] = []
    model.item_tower.text.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    model.train()
    batch = next(iter(datamodule.train_dataloader()))
    model.task.training_loss(model, batch).backward()
    targets = batch["targets"][batch["targets"] >= 0]
    assert calls == [len(torch.unique(torch.cat([batch["inputs"].clamp_min(0).flatten(), targets])))]


def test_the_sequence_tower_trains_in_the_ranking_task(tmp_path, tiny_bert_dir):
    model, datamodule = _build(tmp_path, tiny_bert_dir, "task=ranking", "model/user_tower=sequence")
    _train_step(model, datamodule)


def test_next_item_refuses_a_user_tower_without_order(tmp_path, tiny_bert_dir):
    with pytest.raises(ConfigError, match="sequence user tower"):
        _build(tmp_path, tiny_bert_dir, "experiment=sasrec", "model/user_tower=id")


@pytest.mark.parametrize(
    "towers",
    [
        ["task=ranking", "model/item_tower=id", "model/user_tower=text"],
        ["task=ranking", "model/item_tower=id", "model/user_tower=hybrid"],
        ["task=ranking", "model/item_tower=id", "model/user_tower=text", "model/tuning=lora"],
        [
            "experiment=sasrec",
            "task.max_length=8",
            "model/user_tower=hybrid",
            "model.user_tower.base=sequence",
            "model.user_tower.sequence.layers=1",
        ],
    ],
    ids=["text", "hybrid-id", "text-lora", "hybrid-sequence-next-item"],
)
def test_user_text_towers_train(tmp_path, tiny_bert_dir, towers):
    model, datamodule = _build(tmp_path, tiny_bert_dir, *USER_TAGS, *towers)
    _train_step(model, datamodule)
    texts = datamodule.user_texts()
    assert len(texts) == datamodule.num_users and any(texts) and not all(texts)  # some users wrote tags
    assert any(t.startswith("Tags: ") for t in texts)


def test_user_text_needs_a_source_with_user_fields(tmp_path, tiny_bert_dir):
    with pytest.raises(ConfigError, match="no user text"):
        _build(tmp_path, tiny_bert_dir, "task=ranking", "model/item_tower=id", "model/user_tower=text")


def test_the_user_text_cache_key_includes_the_template(tmp_path, tiny_bert_dir):
    """Two templates over the same users give two embedding-cache entries, and the same template reuses one."""
    common = [*USER_TAGS, "task=ranking", "model/item_tower=id", "model/user_tower=text"]

    def entries() -> set:
        return {p.name for p in (tmp_path / "cache").rglob("*.safetensors")}  # one file per encoded text table

    _build(tmp_path, tiny_bert_dir, *common)
    first = entries()
    _build(tmp_path, tiny_bert_dir, *common)
    assert entries() == first and first
    _build(tmp_path, tiny_bert_dir, *common, "data.user_text.template=['They tagged: {tags}']")
    assert len(entries()) > len(first)
    model, datamodule = _build(tmp_path, tiny_bert_dir, *common, "data.user_text.template=['They tagged: {tags}']")
    assert any(t.startswith("They tagged: ") for t in datamodule.user_texts())
    del model


def test_a_frozen_text_sequence_run_reevaluates_with_equal_metrics(tmp_path):
    """`lmrec-train experiment=sasrec` with frozen MiniLM item vectors, then `lmrec-eval` on its folder: the
    checkpoint (with its cached text table) gives the same test metrics."""
    import json

    from tests.helpers import run_cli

    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    common = [f"paths.cache_dir={cache}"]
    run_cli(
        "lmrec-train",
        ["experiment=sasrec", "model/item_tower=text", "model.user_tower.layers=1", "data.max_users=40",
         "trainer.max_epochs=2", "logger=csv", f"hydra.run.dir={run_dir}", *common],
        home=tmp_path,
    )  # fmt: skip
    run_cli("lmrec-eval", [f"run={run_dir}", f"hydra.run.dir={tmp_path / 'eval'}", *common], home=tmp_path)
    trained = json.loads((run_dir / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "eval" / "eval_metrics.json").read_text())
    for key in ("test/ndcg@10", "test/recall@10", "test/mrr@10"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-7), key
