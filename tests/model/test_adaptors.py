"""UniSRec-style adaptors between text vectors and the model: each map against the formula computed by hand,
the linear adaptor's unchanged parameters (old checkpoints load), a tiny sequence model that learns through a
mixture of experts, experiment=unisrec built from its config, and the errors for bad options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmrec.data.sequences import UserSequences
from lmrec.encoders.text_sources import FrozenTextTable
from lmrec.errors import ConfigError
from lmrec.model.item_towers import HybridItemTower, TextItemTower
from lmrec.model.sequence_tower import SequenceUserTower
from lmrec.model.text_adaptors import MoEAdaptor, ParametricWhitening, build_adaptor
from tests.helpers import build_model, compose_train, prepared_data


def _randomise(module: nn.Module, seed: int = 0) -> None:
    """Random values in every parameter (the gate starts at zero, which would make every gate equal)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))


def test_whitening_is_shift_then_map():
    layer = ParametricWhitening(5, 3)
    _randomise(layer)
    x = torch.randn(4, 5)
    b, w = layer.shift.detach(), layer.weight.detach().T  # W as in (x - b) W: [in, out]
    expected = torch.stack(
        [torch.stack([sum((x[i, j] - b[j]) * w[j, o] for j in range(5)) for o in range(3)]) for i in range(4)]
    )
    torch.testing.assert_close(layer(x), expected)
    assert {name for name, _ in layer.named_parameters()} == {"shift", "weight"}  # no bias after the map


def test_moe_is_the_gate_weighted_sum_of_its_whitenings():
    moe = MoEAdaptor(6, 4, experts=3)
    _randomise(moe, seed=1)
    moe.eval()
    x = torch.randn(2, 5, 6)  # any leading shape (a batch of sequences)
    logits = x @ moe.gate.detach()
    gates = logits.exp() / logits.exp().sum(-1, keepdim=True)
    expected = sum(
        gates[..., k : k + 1] * ((x - e.shift.detach()) @ e.weight.detach().T) for k, e in enumerate(moe.experts)
    )
    torch.testing.assert_close(moe(x), expected)
    torch.testing.assert_close(moe.gates(x).sum(-1), torch.ones(2, 5))
    assert moe.gates(x).min() > 0 and not torch.allclose(moe.gates(x)[..., 0], moe.gates(x)[..., 1])
    torch.testing.assert_close(moe(x), moe(x))  # no noise in evaluation


def test_noisy_gating_adds_noise_in_training_only():
    moe = MoEAdaptor(6, 4, experts=3, noisy_gating=True)
    _randomise(moe, seed=2)
    x = torch.randn(8, 6)
    moe.train()
    first, second = moe.gates(x), moe.gates(x)
    assert not torch.allclose(first, second)
    torch.testing.assert_close(first.sum(-1), torch.ones(8))
    quiet = MoEAdaptor(6, 4, experts=3, noisy_gating=False)
    assert quiet.noise is None
    quiet.train()
    torch.testing.assert_close(quiet.gates(x), quiet.gates(x))


def test_moe_with_one_expert_is_one_whitening():
    moe = MoEAdaptor(6, 4, experts=1)
    _randomise(moe, seed=3)
    single = ParametricWhitening(6, 4)
    single.load_state_dict(moe.experts[0].state_dict())
    x = torch.randn(7, 6)
    moe.train()  # even with gate noise: the softmax of one logit is 1
    torch.testing.assert_close(moe(x), single(x))


def test_the_gate_starts_uniform():
    moe = MoEAdaptor(6, 4, experts=4, init_std=0.02).eval()
    torch.testing.assert_close(moe.gates(torch.randn(3, 6)), torch.full((3, 4), 0.25))
    assert abs(float(moe.experts[0].weight.detach().std()) - 0.02) < 0.01


def test_the_linear_adaptor_keeps_the_old_parameters_and_initialisation():
    table = FrozenTextTable(torch.randn(5, 6))
    torch.manual_seed(0)
    tower = TextItemTower(table, dim=4, init_std=0.02)
    assert set(tower.state_dict()) == {"text.embeddings", "projection.weight", "projection.bias"}
    assert isinstance(tower.projection, nn.Linear)
    torch.manual_seed(0)  # the tower before adaptors: nn.Linear, then Normal(0, init_std) weights and zero bias
    old = nn.Linear(6, 4)
    nn.init.normal_(old.weight, std=0.02)
    nn.init.zeros_(old.bias)
    torch.testing.assert_close(tower.projection.weight, old.weight)
    old_checkpoint = {"text.embeddings": table.embeddings, "projection.weight": old.weight, "projection.bias": old.bias}
    TextItemTower(FrozenTextTable(torch.zeros(5, 6)), dim=4).load_state_dict(old_checkpoint)  # strict
    hybrid = HybridItemTower(table, num_items=5, dim=4)
    assert {"text.projection.weight", "text.projection.bias"} <= set(hybrid.state_dict())


def test_other_adaptors_are_the_towers_projection():
    table = FrozenTextTable(torch.randn(5, 6))
    assert isinstance(TextItemTower(table, dim=4, adaptor="whitening").projection, ParametricWhitening)
    moe = TextItemTower(table, dim=4, adaptor="moe", experts=3).projection
    assert isinstance(moe, MoEAdaptor) and len(moe.experts) == 3
    hybrid = HybridItemTower(table, num_items=5, dim=4, adaptor="moe", experts=2)
    assert isinstance(hybrid.text.projection, MoEAdaptor) and hybrid.all_items().shape == (5, 4)


@pytest.mark.parametrize(
    ("kind", "experts", "key"),
    [("mixture", 8, "model.item_tower.adaptor='mixture'"), ("moe", 0, "model.item_tower.experts=0")],
)
def test_bad_adaptor_options_are_refused(kind, experts, key):
    with pytest.raises(ConfigError, match="model.item_tower.adaptor") as err:
        build_adaptor(kind, 6, 4, experts)
    assert key in str(err.value)
    with pytest.raises(ConfigError, match="model.item_tower.adaptor"):
        TextItemTower(FrozenTextTable(torch.randn(5, 6)), dim=4, adaptor=kind, experts=experts)


def test_an_adaptor_needs_a_projection():
    with pytest.raises(ConfigError, match="model.item_tower.adaptor='moe' needs model.item_tower.project=true"):
        TextItemTower(FrozenTextTable(torch.randn(5, 4)), dim=4, project=False, adaptor="moe")


def test_a_sequence_model_learns_through_the_mixture_of_experts():
    """Each user walks the catalogue in steps of one from their own start; the next item is therefore a function
    of the last one, which the model can only learn if the gradient flows through the adaptor into the gate."""
    torch.manual_seed(0)
    num_items, num_users, length = 12, 16, 7
    starts = torch.arange(num_users) % num_items
    sequences = (starts.unsqueeze(1) + torch.arange(length)) % num_items
    users = torch.arange(num_users).repeat_interleave(length)
    train = UserSequences.from_arrays(
        users.numpy(), sequences.flatten().numpy(), torch.arange(length).repeat(num_users).numpy(), num_users, num_items
    )
    items = TextItemTower(FrozenTextTable(torch.randn(num_items, 16)), dim=8, dropout=0.2, adaptor="moe", experts=4)
    user = SequenceUserTower(train, dim=8, max_length=length, layers=1, heads=2, inner=16, dropout=0.1)
    model = nn.ModuleList([items, user])
    inputs, targets = sequences[:, :-1], sequences[:, 1:]

    def loss() -> torch.Tensor:
        lookup = user.lookup_sequences(inputs)
        states = user.encode(lookup, items(lookup.items))
        return nn.functional.cross_entropy((states @ items.all_items().T).flatten(0, 1), targets.flatten())

    model.eval()
    with torch.no_grad():
        before = float(loss())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(40):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    assert items.projection.gate.grad is not None and items.projection.gate.grad.abs().sum() > 0
    assert items.projection.noise.grad is not None
    model.eval()
    with torch.no_grad():
        after = float(loss())
    assert after < 0.5 * before, (before, after)


def test_experiment_unisrec_builds_a_frozen_moe_text_tower(tmp_path, tiny_bert_dir):
    cfg = compose_train(
        [
            "experiment=unisrec",
            "data.max_users=40",
            "data.batch_size=16",
            f"model.encoder.name_or_path={tiny_bert_dir}",
            "model.encoder.max_length=16",
            "model.user_tower.layers=1",
            "model.user_tower.inner=32",
            "task.max_length=8",
        ],
        tmp_path / "out",
        tmp_path / "cache",
    )
    assert cfg.run_name == "unisrec-text-moe" and cfg.model.tuning.name == "frozen"
    datamodule = prepared_data(cfg)
    model = build_model(cfg, datamodule, datamodule.task)
    tower = model.item_tower
    assert isinstance(tower.text, FrozenTextTable) and isinstance(tower.projection, MoEAdaptor)
    assert len(tower.projection.experts) == 8 and tower.dropout.p == 0.2
    model.train()
    batch = next(iter(datamodule.train_dataloader()))
    model.task.training_loss(model, batch).backward()
    assert tower.projection.experts[0].weight.grad is not None
