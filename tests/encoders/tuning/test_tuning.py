"""Tuning modes on a tiny random BERT over a slice of the bundled data: what trains, what is saved, what exports."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from lmrec.cli.export import export_encoder
from lmrec.encoders.text_sources import TunedTextEncoder
from lmrec.encoders.tuning.bottleneck import BottleneckAdapters, adapter_sites, load_adapted
from lmrec.errors import ConfigError
from lmrec.model.module import RecommenderModule
from lmrec.model.schedules import warmup_decay
from lmrec.runs.checkpoints import EncoderWeightsOut, frozen_encoder_keys, restore_model
from tests.helpers import build_model, compose_train, prepared_data, run_cli

#: mode -> (extra overrides, predicate on an encoder parameter name: should it train?)
MODES = {
    "full": ([], lambda n: not n.startswith("pooler.")),
    "partial": (["model.tuning.method.frozen_layers=-1"], lambda n: n.startswith("encoder.layer.1.")),  # top only
    "lora": ([], lambda n: "lora_" in n and (".query." in n or ".value." in n)),
    "adalora": ([], lambda n: "lora_" in n),
    "ia3": ([], lambda n: "ia3_" in n),
    "prefix": ([], lambda n: n.startswith("prompt_encoder.")),
    "adapter": ([], lambda n: ".adapter." in n or ("LayerNorm" in n and ".layer." in n)),
}


def _build(tmp_path, tiny_bert_dir, mode: str, *overrides: str, seed: int = 0):
    cfg = compose_train(
        [
            "data.max_users=15",
            "task=ranking",
            "data.batch_size=256",
            f"model/tuning={mode}",
            f"model.encoder.name_or_path={tiny_bert_dir}",
            "model.encoder.max_length=24",
            "model.encoder.batch_size=64",
            f"seed={seed}",
            *overrides,
        ],
        tmp_path / "out",
        tmp_path / "cache",
    )
    datamodule = prepared_data(cfg)
    torch.manual_seed(seed)
    return cfg, build_model(cfg, datamodule, datamodule.task), datamodule


def _fit(tmp_path, model, datamodule, steps: int = 3) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        max_steps=steps,
        limit_val_batches=0,
        callbacks=[EncoderWeightsOut()],  # as lmrec-train's trainer: frozen base weights stay out of checkpoints
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer


def _encoder(model: RecommenderModule) -> TunedTextEncoder:
    (encoder,) = model.trainable_encoders()
    return encoder


def _hf_params(model: RecommenderModule) -> dict[str, torch.nn.Parameter]:
    """Encoder parameters by the transformers/peft model's own names (peft's wrapper prefixes stripped)."""
    out = {}
    for name, parameter in _encoder(model).tuned_model.named_parameters():
        out[name.removeprefix("base_model.model.")] = parameter
    return out


@pytest.mark.parametrize("mode", list(MODES))
def test_exactly_the_intended_encoder_weights_train(tmp_path, tiny_bert_dir, mode):
    overrides, should_train = MODES[mode]
    _, model, datamodule = _build(tmp_path, tiny_bert_dir, mode, *overrides)
    params = _hf_params(model)
    trainable = {n for n, p in params.items() if p.requires_grad}
    assert trainable == {n for n in params if should_train(n)}, mode
    assert trainable, mode
    before = {n: p.detach().clone() for n, p in params.items()}
    _fit(tmp_path, model, datamodule)
    for name, parameter in params.items():
        if name in trainable:
            assert not torch.equal(parameter, before[name]), f"{mode}: {name} did not train"
        else:
            assert torch.equal(parameter, before[name]), f"{mode}: frozen {name} changed"
    counts = model.parameter_counts()
    encoder_trainable = sum(params[n].numel() for n in trainable)
    assert counts["trainable"] >= encoder_trainable and counts["total"] > counts["trainable"] or mode == "full"


def test_adalora_gets_the_trainers_step_count_and_reallocates(tmp_path, tiny_bert_dir):
    _, model, datamodule = _build(tmp_path, tiny_bert_dir, "adalora", "model.tuning.method.deltaT=1")
    _fit(tmp_path, model, datamodule, steps=4)
    peft_model = _encoder(model).tuned_model
    assert peft_model.peft_config["default"].total_step == 4
    # update_and_allocate ran every step: at the last one it fixed the final rank pattern from the sensitivities
    assert peft_model.peft_config["default"].rank_pattern


def test_distinct_item_encoding_equals_per_row_encoding(tmp_path, tiny_bert_dir):
    _, model, _ = _build(tmp_path, tiny_bert_dir, "lora")
    model.eval()
    items = torch.tensor([5, 3, 5, 5, 0, 3, 7, 0, 1])
    per_row = model.item_tower(items)
    (distinct,) = model.item_vectors(items)
    assert torch.allclose(distinct, per_row, atol=1e-5)
    # with a history user tower the history items share the same single encoder pass
    _, model, _ = _build(tmp_path, tiny_bert_dir, "full", "model/user_tower=history")
    model.eval()
    calls = []
    model.item_tower.text.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    users = torch.tensor([0, 1, 0])
    scores = model.score_pairs(users, items[:3])
    lookup = model.user_tower.lookup(users)
    assert calls == [len(torch.unique(torch.cat([items[:3], lookup.items])))]
    all_vectors = model.item_tower.all_items()
    u = model.user_tower(users, lookup, all_vectors[lookup.items])
    assert torch.allclose(scores, model.head(u, all_vectors[items[:3]], users, items[:3]), atol=1e-5)


@pytest.mark.parametrize("frozen_layers", [0, 1])
def test_partial_tuning_on_cached_frozen_layers_computes_the_uncached_model(tmp_path, tiny_bert_dir, frozen_layers):
    models = {}
    for cache in ("true", "false"):
        _, model, _ = _build(
            tmp_path,
            tiny_bert_dir,
            "partial",
            f"model.tuning.method.frozen_layers={frozen_layers}",
            f"model.tuning.method.cache_frozen_layers={cache}",
        )
        model.eval()  # no dropout: both paths compute the same function
        models[cache] = model
    cached, plain = _encoder(models["true"]), _encoder(models["false"])
    assert cached.cached_depth == frozen_layers and plain.cached_depth is None
    with torch.inference_mode():  # the cache is first filled inside an evaluation, as Lightning's sanity check does
        assert torch.allclose(cached.all_items(), plain.all_items(), atol=1e-5)
    assert cached.bottom_states.shape == (int(cached.lengths.sum()), cached.dim)  # one row per real token
    items = torch.tensor([4, 2, 9, 4, 0])
    grads = []
    for model in (models["true"], models["false"]):
        model.item_tower(items).square().sum().backward()  # trains through states cached under inference mode
        grads.append({n: p.grad for n, p in _hf_params(model).items() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    assert all(n.startswith(f"encoder.layer.{frozen_layers}.") or frozen_layers == 0 for n in grads[0])
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-5), name
    # loading weights drops the cache, so it is rebuilt from the weights now in place
    models["true"].load_state_dict(models["true"].state_dict(), strict=False)
    assert cached.bottom_states is None


def test_length_sorted_chunks_give_the_one_pass_vectors(tmp_path, tiny_bert_dir):
    _, model, _ = _build(tmp_path, tiny_bert_dir, "lora")
    model.eval()
    encoder = _encoder(model)
    items = torch.randperm(len(encoder.lengths))[:40]
    whole = encoder._encode(items)
    encoder.chunk_size = 7
    assert torch.allclose(encoder(items), whole, atol=1e-5)


def test_peft_checkpoints_hold_only_trained_weights_and_restore_the_scores(tmp_path, tiny_bert_dir):
    sizes = {}
    for mode in ("lora", "adapter", "full"):
        _, model, datamodule = _build(tmp_path, tiny_bert_dir, mode)
        trainer = _fit(tmp_path / mode, model, datamodule)
        path = tmp_path / f"{mode}.ckpt"
        trainer.save_checkpoint(path)
        state = torch.load(path, weights_only=True)["state_dict"]
        frozen = frozen_encoder_keys(model)
        assert not frozen & set(state), mode
        sizes[mode] = sum(t.numel() for t in state.values())
        model.eval()
        users, items = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 6, 4])
        expected = model.score_pairs(users, items)
        _, fresh, _ = _build(tmp_path, tiny_bert_dir, mode, seed=1)
        fresh.eval()
        assert not torch.allclose(fresh.score_pairs(users, items), expected)
        restore_model(fresh, path)
        assert torch.equal(fresh.score_pairs(users, items), expected), mode
    assert sizes["lora"] < sizes["full"] and sizes["adapter"] < sizes["full"]


def _run_dir(tmp_path, cfg, model, datamodule):
    """A minimal run folder (saved config + checkpoint), as lmrec-train writes it."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    trainer = _fit(tmp_path, model, datamodule)
    trainer.save_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    return run_dir


def _reference_vectors(model, texts):
    encoder = _encoder(model).encoder
    encoder.eval()
    with torch.no_grad():
        batch = encoder.tokenizer(texts, padding=True, return_tensors="pt")
        return encoder(batch["input_ids"], batch["attention_mask"])


def _pooled(hf_model, tokenizer, texts):
    from lmrec.encoders.text_encoder import pool

    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = hf_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    return torch.nn.functional.normalize(pool(hidden, batch["attention_mask"], "mean"), dim=-1)


@pytest.mark.parametrize("mode", ["lora", "full", "adapter"])
def test_export_round_trips_through_transformers_and_peft(tmp_path, tiny_bert_dir, mode):
    from transformers import AutoModel, AutoTokenizer

    cfg, model, datamodule = _build(tmp_path, tiny_bert_dir, mode)
    run_dir = _run_dir(tmp_path, cfg, model, datamodule)
    out = export_encoder(
        OmegaConf.create({"run": str(run_dir), "checkpoint": "last", "output_dir": None, "merge_lora": mode == "lora"})
    )
    texts = ["Toy Story (1995) | Adventure, Animation", "Heat (1995)"]
    expected = _reference_vectors(model, texts)
    tokenizer = AutoTokenizer.from_pretrained(out)
    if mode == "lora":
        from peft import PeftModel

        loaded = PeftModel.from_pretrained(AutoModel.from_pretrained(tiny_bert_dir), out).eval()
        merged = AutoModel.from_pretrained(out / "merged").eval()
        assert torch.allclose(_pooled(merged, tokenizer, texts), expected, atol=1e-5)
    elif mode == "adapter":
        loaded = load_adapted(out)
    else:
        loaded = AutoModel.from_pretrained(out).eval()
    assert torch.allclose(_pooled(loaded, tokenizer, texts), expected, atol=1e-5)
    assert (out / "lmrec_encoder.json").is_file()
    with pytest.raises(ConfigError, match="not empty"):
        export_encoder(OmegaConf.create({"run": str(run_dir), "checkpoint": "last", "output_dir": str(out)}))


def test_adapter_parameter_count_matches_houlsby_formula_and_starts_as_identity(tiny_bert_dir):
    from transformers import AutoModel

    base = AutoModel.from_pretrained(tiny_bert_dir).eval()
    adapted = BottleneckAdapters(reduction_factor=4, train_layer_norm=False).apply(
        AutoModel.from_pretrained(tiny_bert_dir).eval()
    )
    d, layers = base.config.hidden_size, base.config.num_hidden_layers
    m = d // 4
    per_adapter = d * m + m + m * d + d  # down (weights + bias) + up (weights + bias)
    trainable = sum(p.numel() for p in adapted.parameters() if p.requires_grad)
    assert len(adapter_sites(adapted)) == 2 * layers
    assert trainable == 2 * layers * per_adapter
    ids = torch.tensor([[101, 2000, 2017, 102]])
    assert torch.equal(base(input_ids=ids).last_hidden_state, adapted(input_ids=ids).last_hidden_state)
    with_ln = BottleneckAdapters(reduction_factor=4).apply(AutoModel.from_pretrained(tiny_bert_dir))
    assert sum(p.numel() for p in with_ln.parameters() if p.requires_grad) == trainable + 2 * layers * 2 * d


def test_gradient_checkpointing_gives_the_same_gradients(tmp_path, tiny_bert_dir):
    grads = []
    for checkpointing in ("false", "true"):
        _, model, datamodule = _build(
            tmp_path,
            tiny_bert_dir,
            "lora",
            f"model.tuning.gradient_checkpointing={checkpointing}",
            "model.tuning.method.lora_dropout=0",
        )
        model.train()
        layers_checkpointed = [getattr(m, "gradient_checkpointing", False) for m in model.modules()]
        assert any(layers_checkpointed) == (checkpointing == "true")
        for module in model.modules():  # dropout off, so both passes compute the same function
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        batch = next(iter(datamodule.train_dataloader()))
        model.task.training_loss(model, batch).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("lora_A" in n for n in grads[0])
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name


def test_encoder_gets_its_own_learning_rate_and_no_decay_on_norms(tmp_path, tiny_bert_dir):
    _, model, _ = _build(tmp_path, tiny_bert_dir, "full", "model.tuning.lr=1e-5", "model.tuning.weight_decay=0.02")
    groups = {g["name"]: g for g in model.parameter_groups()}
    assert "lr" not in groups["model"] and groups["encoder"]["lr"] == 1e-5
    assert groups["encoder"]["weight_decay"] == 0.02 and groups["encoder_no_decay"]["weight_decay"] == 0.0
    encoder_ids = {id(p) for p in _encoder(model).parameters() if p.requires_grad}
    assert {id(p) for g in ("encoder", "encoder_no_decay") for p in groups[g]["params"]} == encoder_ids


def test_warmup_then_linear_decay():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    schedule = warmup_decay(optimizer, num_training_steps=10, warmup_ratio=0.2)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = [0.0, 0.5] + [(10 - s) / 8 for s in range(2, 10)]
    assert rates == pytest.approx(expected)
    with pytest.raises(ConfigError, match="warmup_ratio"):
        warmup_decay(optimizer, 10, warmup_ratio=1.5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model/item_tower=id"], "uses no text"),
        (["model.tuning.method.frozen_layers=5"], "has 2 layers"),
        (["model.tuning.method.frozen_layers=-3"], "has 2 layers; expected -2 to 2"),
    ],
)
def test_bad_tuning_settings_fail_clearly(tmp_path, tiny_bert_dir, overrides, message):
    with pytest.raises(ConfigError, match=message):
        _build(tmp_path, tiny_bert_dir, "partial", *overrides)


def test_unknown_peft_option_fails_clearly(tmp_path, tiny_bert_dir):
    with pytest.raises(ConfigError, match="LORA"):
        _build(tmp_path, tiny_bert_dir, "lora", "+model.tuning.method.no_such_option=1")


def test_compiled_encoder_gives_the_eager_vectors(tmp_path, tiny_bert_dir):
    _, eager, _ = _build(tmp_path, tiny_bert_dir, "lora")
    _, compiled, _ = _build(tmp_path, tiny_bert_dir, "lora", "model.tuning.compile=true")
    assert isinstance(compiled.item_tower.text.encoder.model, torch._dynamo.eval_frame.OptimizedModule)
    assert compiled.item_tower.text.tuned_model is compiled.item_tower.text.encoder.model._orig_mod
    eager.eval()
    compiled.eval()
    items = torch.tensor([3, 1, 4, 1, 5])
    with torch.no_grad():
        assert torch.allclose(compiled.item_tower(items), eager.item_tower(items), atol=1e-5)


def test_tuning_comparison_sweep_writes_one_row_per_mode_including_failures(tmp_path, tiny_bert_dir):
    """experiment=tuning_comparison end to end; `partial` with 3 frozen layers fails on the 2-layer tiny BERT."""
    import csv
    import json

    sweep = tmp_path / "sweep"
    run_cli(
        "lmrec-train",
        [
            "experiment=tuning_comparison",
            "model/tuning=frozen,lora,partial",
            "data.max_users=10",
            "trainer.max_epochs=1",
            f"model.encoder.name_or_path={tiny_bert_dir}",
            f"hydra.sweep.dir={sweep}",
            f"paths.cache_dir={tmp_path / 'cache'}",
        ],
        tmp_path,
        ok=False,  # the failing job makes the sweep exit non-zero
    )
    rows = list(csv.DictReader((sweep / "tuning_comparison.csv").open()))
    assert [(r["label"], r["status"]) for r in rows] == [
        ("frozen", "completed"),
        ("lora", "completed"),
        ("partial", "failed"),
    ]
    for row in rows[:2]:
        metrics = json.loads((sweep / row["job"] / "metrics.json").read_text())
        info = json.loads((sweep / row["job"] / "run.json").read_text())
        assert row["metric"] == "test/ndcg@10" and float(row["value"]) == pytest.approx(metrics["test/ndcg@10"])
        assert int(row["trainable"]) == info["params"]["trainable"] and float(row["seconds_per_epoch"]) > 0
        assert int(row["optimizer_steps"]) == info["optimizer_steps"] > 0 and float(row["seconds_per_step"]) > 0
    assert int(rows[1]["trainable"]) > int(rows[0]["trainable"])  # LoRA adds trainable encoder weights
    table = (sweep / "tuning_comparison.md").read_text()
    assert table.count("\n") == 2 + len(rows) and "| lora | completed |" in table
