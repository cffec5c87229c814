"""The extension contracts: a new user tower, task or trainable encoder is one class (plus its config), nothing else.

Each class below lives only in this test module and is named by its config's `_target_`; the datamodule, module,
builder and entry points are used as they are.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lmrec.cli.train import train
from lmrec.model.inputs import PROVIDERS
from lmrec.tasks.rating import RatingTask
from tests.helpers import built_model, compose_train


@pytest.fixture(autouse=True)
def _allow_test_components(monkeypatch):
    """A researcher's own components are refused unless allowed (lmrec.config.allowlist): these tests' are."""
    monkeypatch.setenv("LMREC_ALLOWED_TARGETS", "first_item_tower.,tests.model.test_contracts.")


class AbsoluteErrorRatingTask(RatingTask):
    """A new task: rating prediction trained on the absolute error."""

    def training_loss(self, model, batch):
        prediction = self.predict(model.score_pairs(batch["users"], batch["items"]).float())
        return (prediction - batch["ratings"]).abs().mean()


class ToyTrainableEncoder(nn.Module):
    """A trainable text source that is not lmrec's TunedTextEncoder: a frozen table plus a trained offset."""

    def __init__(self, num_items: int, width: int = 8) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(num_items, width), requires_grad=False)
        self.offset = nn.Parameter(torch.zeros(width))
        self.dim = width

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.table[items] + self.offset

    def all_items(self) -> torch.Tensor:
        return self.table + self.offset

    def frozen_state_keys(self) -> set[str]:
        return {"table"}

    def base_weights_sha256(self) -> str:
        return "toy-weights"

    def on_fit_start(self, total_steps: int) -> None: ...
    def after_optimizer_step(self, global_step: int) -> None: ...
    def regularization(self) -> torch.Tensor | None:
        return None


class ToyTextTower(nn.Module):
    def __init__(self, num_items: int, dim: int) -> None:
        super().__init__()
        self.text = ToyTrainableEncoder(num_items)
        self.projection = nn.Linear(self.text.dim, dim)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.projection(self.text(items))

    def all_items(self) -> torch.Tensor:
        return self.projection(self.text.all_items())


#: A new user tower in a module of its own, with the data-derived input it needs registered beside it. The builder
#: imports the module only through the config's `_target_`, so nothing else knows the tower exists.
FIRST_ITEM_TOWER = """
import torch
from torch import nn

from lmrec.data.sparse import CSRMatrix
from lmrec.model.inputs import BuildContext, model_input
from lmrec.model.user_towers import ItemLookup, UserTower


@model_input("first_items")
def _first_items(context: BuildContext) -> torch.Tensor:
    history: CSRMatrix = context.datamodule.train_history()
    return history.col[history.crow[:-1]]


class FirstItemUserTower(UserTower):
    \"\"\"A user is the projected vector of their lowest-numbered training item (a toy sequence tower).\"\"\"

    def __init__(self, first_items: torch.Tensor, dim: int) -> None:
        super().__init__()
        self.register_buffer("first", first_items.clone(), persistent=False)
        self.projection = nn.Linear(dim, dim)

    def lookup(self, users):
        return ItemLookup(self.first[users])

    def forward(self, users, lookup, item_vectors):
        return self.projection(item_vectors)
"""

#: The one yaml each new component gets, in a config folder of the user's own (Hydra's search path).
CONFIGS = {
    "model/user_tower/first_item.yaml": "name: first_item\n_target_: first_item_tower.FirstItemUserTower\n"
    "_partial_: true\ndim: ${model.dim}\n",
    "task/abs_error.yaml": "name: abs_error\n_target_: tests.model.test_contracts.AbsoluteErrorRatingTask\n"
    "monitor: val/mae\nmonitor_mode: ${lmrec.metric_mode:${task.monitor}}\n",
    "model/item_tower/toy.yaml": "name: toy\n_target_: tests.model.test_contracts.ToyTextTower\n_partial_: true\n"
    "dim: ${model.dim}\n",
}


def _cfg(tmp_path, *overrides):
    own = tmp_path / "my_configs"
    for name, text in CONFIGS.items():
        (own / name).parent.mkdir(parents=True, exist_ok=True)
        (own / name).write_text(text)
    return compose_train(
        [f"hydra.searchpath=[file://{own}]", "data.max_users=20", "model/item_tower=id", "logger=csv"]
        + ["trainer.max_epochs=2", *overrides],
        tmp_path / "out",
        tmp_path / "cache",
    )


def test_a_new_user_tower_with_a_new_data_input_needs_no_other_change(tmp_path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "first_item_tower.py").write_text(FIRST_ITEM_TOWER)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    assert "first_items" not in PROVIDERS  # registered only once the builder imports the tower's module
    cfg = _cfg(tmp_path, "model/user_tower=first_item")
    model, datamodule = built_model(cfg)
    history = datamodule.train_history()
    assert torch.equal(model.user_tower.first, history.col[history.crow[:-1]])
    users = torch.tensor([3, 0, 3])
    expected = model.head(
        model.user_tower.projection(model.item_tower(model.user_tower.first[users])),
        model.item_tower(torch.tensor([1, 2, 1])),
        users,
        torch.tensor([1, 2, 1]),
    )
    assert torch.allclose(model.score_pairs(users, torch.tensor([1, 2, 1])), expected, atol=1e-6)
    assert type(model.user_tower).__name__ == "FirstItemUserTower" and "first_items" in PROVIDERS
    metrics = train(cfg, tmp_path / "out")
    assert {"test/rmse", "test/auc"} <= set(metrics)


def test_a_new_task_needs_no_other_change(tmp_path):
    cfg = _cfg(tmp_path, "task=abs_error")
    assert cfg.callbacks.model_checkpoint.mode == "min"  # direction from the metric's name
    metrics = train(cfg, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["best/val/mae"] > 0
    assert metrics["test/mae"] > 0


def test_a_trainable_encoder_is_found_by_its_protocol(tmp_path):
    cfg = _cfg(tmp_path, "model/item_tower=toy", "model.tuning.lr=0.5")
    model, _ = built_model(cfg)
    (encoder,) = model.trainable_encoders()
    assert isinstance(encoder, ToyTrainableEncoder) and model.encoder_weights_sha256() == ["toy-weights"]
    groups = {g["name"]: g for g in model.parameter_groups()}
    assert groups["encoder_no_decay"]["params"] == [encoder.offset] and groups["encoder_no_decay"]["lr"] == 0.5
    checkpoint = {"state_dict": model.state_dict()}
    model.on_save_checkpoint(checkpoint)
    assert "item_tower.text.table" not in checkpoint["state_dict"]  # frozen: comes from the encoder's own files
    assert checkpoint["encoder_weights_sha256"] == ["toy-weights"]
    model.load_trained_weights(checkpoint["state_dict"])  # its absence is accepted
    with pytest.raises(ValueError, match="checkpoint does not fit this model"):
        model.load_trained_weights({k: v for k, v in checkpoint["state_dict"].items() if "offset" not in k})
