"""The extension contracts: a new user tower, task or trainable encoder is one class (plus its config), nothing else.

Each class below lives only in this test module, or in a module the test writes into a folder of its own, and is
named by a yaml in a config folder of the user's own (Hydra's search path); the datamodule, module, builders and
entry points are used as they are.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lmrec.cli.train import train
from lmrec.config.arguments import PROVIDERS
from lmrec.runs.checkpoints import EncoderWeightsOut, encoder_weights_sha256, load_trained_weights, restore_model
from lmrec.tasks.rating import RatingTask
from tests.helpers import built_model, compose_train


@pytest.fixture(autouse=True)
def _allow_test_components(monkeypatch):
    """A researcher's own components are refused unless allowed (lmrec.config.allowlist): these tests' are."""
    monkeypatch.setenv("LMREC_ALLOWED_TARGETS", "first_item_tower.,mean_rank_task.,tests.model.test_contracts.")


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

from lmrec.config.arguments import BuildFacts, provides
from lmrec.data.sparse import CSRMatrix
from lmrec.model.user_towers import ItemLookup, UserTower


@provides("first_items")
def _first_items(facts: BuildFacts) -> torch.Tensor:
    history: CSRMatrix = facts.datamodule.train_history()
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
    "monitor: val/mae\n",
    "task/mean_rank.yaml": "name: mean_rank\n_target_: mean_rank_task.MeanRankTask\nmonitor: val/mean_rank\n",
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
    assert isinstance(encoder, ToyTrainableEncoder) and encoder_weights_sha256(model) == ["toy-weights"]
    groups = {g["name"]: g for g in model.parameter_groups()}
    assert groups["encoder_no_decay"]["params"] == [encoder.offset] and groups["encoder_no_decay"]["lr"] == 0.5
    checkpoint = {"state_dict": model.state_dict()}
    EncoderWeightsOut().on_save_checkpoint(None, model, checkpoint)
    assert "item_tower.text.table" not in checkpoint["state_dict"]  # frozen: comes from the encoder's own files
    assert checkpoint["encoder_weights_sha256"] == ["toy-weights"]
    load_trained_weights(model, checkpoint["state_dict"])  # its absence is accepted
    with pytest.raises(ValueError, match="checkpoint does not fit this model"):
        load_trained_weights(model, {k: v for k, v in checkpoint["state_dict"].items() if "offset" not in k})


#: A new task in a module of its own: a metric lmrec has never heard of that is better when lower, a data-derived
#: constructor argument registered beside it, and scores only through the module's public `Scorer` protocol.
MEAN_RANK_TASK = """
import torch
import torchmetrics
from torch.nn import functional as F

from lmrec.config.arguments import BuildFacts, provides
from lmrec.data.batches import InteractionBatches
from lmrec.tasks.base import Task


@provides("rating_midpoint")
def _rating_midpoint(facts: BuildFacts) -> float:
    scale = facts.source.rating_scale
    return (scale.low + scale.high) / 2


class MeanRankTask(Task):
    \"\"\"Liked (rating above the scale's midpoint) or not; evaluated by the rank of each rated item among all.\"\"\"

    lower_is_better = frozenset({"mean_rank", "loss"})

    def __init__(self, rating_midpoint: float) -> None:
        super().__init__()
        self.midpoint = rating_midpoint

    def train_dataset(self, splits):
        return InteractionBatches(*splits.tensors("train"))

    def eval_dataset(self, splits, split):
        return InteractionBatches(*splits.tensors(split))

    def training_loss(self, model, batch):
        liked = (batch["ratings"] > self.midpoint).float()
        return F.binary_cross_entropy_with_logits(model.score_pairs(batch["users"], batch["items"]).float(), liked)

    def metric_names(self, split=None):
        return ["mean_rank"]

    def make_metrics(self, split=None):
        return torchmetrics.MetricCollection({"mean_rank": torchmetrics.MeanMetric()})

    def update_metrics(self, metrics, model, batch):
        scores = model.score_all_items(batch["users"]).float()
        own = scores.gather(1, batch["items"].unsqueeze(1))
        metrics["mean_rank"].update((scores > own).sum(1).float() + 1)
"""


def test_a_new_task_is_one_class_and_one_yaml(tmp_path, monkeypatch):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "mean_rank_task.py").write_text(MEAN_RANK_TASK)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    assert "rating_midpoint" not in PROVIDERS  # registered only once the task's module is imported
    cfg = _cfg(tmp_path, "task=mean_rank")
    # The direction the task declares reaches checkpointing and early stopping (no `monitor_mode` in its yaml).
    assert cfg.callbacks.model_checkpoint.mode == "min" and cfg.callbacks.early_stopping.mode == "min"
    model, datamodule = built_model(cfg)
    assert model.task.midpoint == 2.75  # ml-latest-small's scale [0.5, 5.0]
    metrics = train(cfg, tmp_path / "out")
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert 1 <= written["best/val/mean_rank"] <= datamodule.num_items
    # The reference, computed another way: the best checkpoint's rank of each test row's item, one row at a time.
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    restore_model(model, tmp_path / "out" / run["checkpoint"])
    users, items, _ = datamodule.splits.tensors("test")
    model.eval()
    ranks = []
    with torch.no_grad():
        for user, item in zip(users.tolist(), items.tolist(), strict=True):
            row = model.score_all_items(torch.tensor([user]))[0]
            ranks.append(float((row > row[item]).sum()) + 1)
    assert metrics["test/mean_rank"] == pytest.approx(sum(ranks) / len(ranks), rel=1e-5)
