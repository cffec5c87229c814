"""Every config group option composes and resolves; model variants train for an epoch on a data slice."""

from __future__ import annotations

import json
import math

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from lmrec.cli.train import train
from lmrec.config.allowlist import check_targets
from tests.conftest import REPO_ROOT
from tests.helpers import compose_train

#: Groups a run composes outside Hydra's own (`hydra/...`) and the sweep-only `hparams_search`.
RUN_GROUPS = ("data", "model", "task", "trainer", "logger", "callbacks", "paths", "experiment", "protocol")


def group_options() -> list[tuple[str, str]]:
    """Every option a user can choose: each yaml of a run group's folder that is not an internal (`_*`) file."""
    conf = REPO_ROOT / "conf"
    found = []
    for path in sorted(conf.rglob("*.yaml")):
        group = str(path.parent.relative_to(conf))
        if group.split("/")[0] in RUN_GROUPS and not path.name.startswith("_"):
            found.append((group, path.stem))
    return found


@pytest.mark.parametrize(("group", "option"), group_options(), ids=lambda v: str(v))
def test_every_option_composes_and_resolves(group, option, tmp_path):
    cfg = compose_train([f"{group}={option}"], tmp_path / "out", tmp_path / "cache")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if "model_checkpoint" not in (resolved.get("callbacks") or {}):
        return
    assert resolved["callbacks"]["model_checkpoint"]["monitor"] == resolved["task"]["monitor"]
    # checkpointing and early stopping follow the monitored metric's direction, as the task declares it
    assert resolved["callbacks"]["model_checkpoint"]["mode"] == (
        "min" if resolved["task"]["monitor"] in ("val/rmse", "val/mae") else "max"
    )


@pytest.mark.parametrize("logger", ["csv", "tensorboard"])
def test_file_loggers_instantiate(logger, tmp_path):
    cfg = compose_train([f"logger={logger}"], tmp_path / "out", tmp_path / "cache")
    (built,) = [instantiate(c) for c in cfg.logger.values()]
    assert str(tmp_path / "out") in str(built.log_dir)


VARIANTS = [
    ["model/item_tower=text", "model/user_tower=id", "model/head=dot", "task=rating"],
    # the MLP head with BPR: in-batch softmax would score every pair of the batch through the MLP (the objective
    # tests cover MLP + in-batch on tiny batches)
    ["model/item_tower=hybrid", "model/user_tower=history", "model/head=mlp", "task=ranking", "task.loss=bpr"],
    ["model/item_tower=id", "model/user_tower=id", "model/head=mlp", "task=rating"],
    ["model/item_tower=text", "model/user_tower=history", "model/head=dot", "task=ranking", "task.loss=bce"],
    ["model/item_tower=hybrid", "model.item_tower.combine=concat", "task=rating", "data.split.strategy=temporal_loo"],
    ["model.scheduler={_target_:torch.optim.lr_scheduler.ReduceLROnPlateau,_partial_:true,patience:0}", "task=ranking"],
    # tuned encoders compose with every tower, head and task, and with step-wise schedules
    [
        "model/item_tower=hybrid",
        "model/user_tower=history",
        "model/head=mlp",
        "task=ranking",
        "task.loss=bpr",
        "model/tuning=lora",
    ],
    ["model/tuning=adapter", "model/head=mlp", "task=rating", "model/scheduler=warmup_cosine"],
    ["model/tuning=full", "model/user_tower=history", "task=rating", "model/scheduler=warmup_linear"],
    # cached frozen layers: filled inside the sanity check, trained through, dropped and refilled on restore
    ["model/tuning=partial_top", "model/user_tower=history", "task=ranking"],
]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(x.split("=")[-1] for x in o))
def test_model_variants_train_and_test(overrides, tiny_bert_dir, tmp_path):
    cfg = compose_train(
        [
            *overrides,
            "logger=csv",
            "data.max_users=25",
            "trainer.max_epochs=2",
            f"model.encoder.name_or_path={tiny_bert_dir}",
            "model.encoder.max_length=32",
            "per_user=false",  # the variants are about training; per-user output has its own tests (tests/runs)
        ],
        tmp_path / "out",
        tmp_path / "cache",
    )
    metrics = train(cfg, tmp_path / "out")
    stored = json.loads((tmp_path / "out" / "metrics.json").read_text())
    expected = {"test/rmse", "test/mae", "test/auc"} if cfg.task.name == "rating" else {"test/ndcg@10", "test/auc"}
    assert expected <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    assert all(stored[k] == pytest.approx(v) for k, v in metrics.items())
    assert stored[f"best/{cfg.task.monitor}"] is not None
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["checkpoint"].startswith("checkpoints/epoch")  # the best checkpoint, not last.ckpt
    assert (tmp_path / "out" / info["checkpoint"]).is_file()


def _shipped_options() -> list[str]:
    """`group=option` for every option file under conf/ (Hydra's own settings, `_`-prefixed bases and the study
    specifications, which `lmrec-study` reads and `lmrec-train` never composes, excepted)."""
    conf = REPO_ROOT / "conf"
    found = []
    for path in sorted(conf.rglob("*.yaml")):
        relative = path.relative_to(conf)
        if len(relative.parts) > 1 and relative.parts[0] not in ("hydra", "study") and not path.name.startswith("_"):
            found.append(f"{relative.parent.as_posix()}={path.stem}")
    return found


@pytest.mark.parametrize("override", _shipped_options())
def test_every_shipped_option_passes_the_target_allow_list(override, tmp_path):
    """The allow-list refuses nothing lmrec ships: every `_target_` a composed option names is checked (and
    imported) as `lmrec-train` and `lmrec-eval` would before building it."""
    cfg = compose_train([override], tmp_path / "out", tmp_path / "cache")
    check_targets(cfg)
