"""`lmrec.config.validate`: every shipped config passes, and each bad value is one ConfigError naming key and value."""

from __future__ import annotations

import re

import pytest
from omegaconf import OmegaConf

from lmrec.cli.components import ENTRY_OPTIONS, build_data, check_run_config, seed_run
from lmrec.config.schema import Number, Option, Whole
from lmrec.config.validate import config_problems, declared_options
from lmrec.errors import ConfigError
from tests.helpers import compose_train

SHIPPED = [
    [],
    ["model/head=mlp", "task=ranking"],
    ["trainer=gpu"],
    ["trainer=ddp"],
    ["trainer=ddp_slurm"],
    ["trainer=ddp_sim"],
    ["model=ease", "task=ranking"],
    ["model=ease_text", "task=ranking"],
    ["model=als", "task=ranking"],
    ["model=biases"],
    ["model/tuning=lora", "model/scheduler=warmup_cosine"],
    ["experiment=ranking_strong"],
    ["experiment=tuning_comparison"],
    ["data=mind_small", "task=impressions"],
    ["data=amazon2023"],
    ["trainer.max_time=00:00:10:00", "trainer.devices=[0]", "trainer.precision=16", "trainer.limit_val_batches=3"],
]


@pytest.mark.parametrize("overrides", SHIPPED, ids=lambda o: " ".join(o) or "default")
def test_shipped_configs_pass(overrides, tmp_path):
    cfg = compose_train(overrides, tmp_path, tmp_path / "cache")
    assert config_problems(cfg, declared_options(cfg, ENTRY_OPTIONS)) == []


# (override, the value as the message must quote it, words of what is expected)
BAD = [
    ("trainer.max_epochs=abc", "trainer.max_epochs='abc'", "a whole number >= 1, one of -1 or null (-1: no limit"),
    ("trainer.max_epochs=1.5", "trainer.max_epochs=1.5", "a whole number >= 1"),
    ("trainer.max_epochs=true", "trainer.max_epochs=True", "a whole number >= 1"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0", "0 would train nothing, train=false tests the initial weights"),
    ("trainer.min_epochs=-1", "trainer.min_epochs=-1", "a whole number >= 0"),
    ("+trainer.val_check_interval=0", "trainer.val_check_interval=0", "a number in (0.0, 1.0]"),
    ("+trainer.val_check_interval=1.5", "trainer.val_check_interval=1.5", "a whole number >= 1"),
    ("trainer.check_val_every_n_epoch=0", "trainer.check_val_every_n_epoch=0", "a whole number >= 1"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0", "a whole number >= 1"),
    ("trainer.gradient_clip_val=abc", "trainer.gradient_clip_val='abc'", "a number >= 0.0 or null"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1", "a number >= 0.0"),
    ("trainer.devices=0", "trainer.devices=0", "a whole number >= 1, one of -1, 'auto'"),
    ("trainer.precision=13", "trainer.precision=13", "one of 64, 32, 16,"),
    ("trainer.precision=bogus", "trainer.precision='bogus'", "'bf16-mixed'"),
    ("trainer.limit_train_batches=1.5", "trainer.limit_train_batches=1.5", "a number in [0.0, 1.0]"),
    ("trainer.limit_val_batches=-1", "trainer.limit_val_batches=-1", "a whole number >= 0"),
    ("trainer.max_time=10min", "trainer.max_time='10min'", '"DD:HH:MM:SS"'),
    ("data.batch_size=-5", "data.batch_size=-5", "a whole number >= 1"),
    ("data.batch_size=abc", "data.batch_size='abc'", "a whole number >= 1"),
    ("data.eval_batch_size=0", "data.eval_batch_size=0", "a whole number >= 1 or one of 'auto'"),
    ("data.num_workers=-1", "data.num_workers=-1", "a whole number >= 0"),
    ("data.max_users=0", "data.max_users=0", "a whole number >= 1 or null"),
    ("data.split.ratios=[8,-1,1]", "data.split.ratios=[8, -1, 1]", "three non-negative numbers with a positive sum"),
    ("data.split.ratios=[8,1]", "data.split.ratios=[8, 1]", "three non-negative numbers"),
    ("data.split.strategy=kfold", "data.split.strategy='kfold'", "one of 'random', 'user_random'"),
    ("data.split.cold_share=1.0", "data.split.cold_share=1.0", "a number in (0.0, 1.0)"),
    ("data.split.max_history=0", "data.split.max_history=0", "a whole number >= 1 or null"),
    ("+data.split.cut=abc", "data.split.cut='abc'", "a non-empty list"),
    ("data.kcore.user=-1", "data.kcore.user=-1", "a whole number >= 0"),
    ("model.encoder.pooling=max", "model.encoder.pooling='max'", "one of 'mean', 'cls', 'last'"),
    ("model.encoder.dtype=int8", "model.encoder.dtype='int8'", "one of 'float32', 'bfloat16'"),
    ("model.encoder.prompt=abc", "model.encoder.prompt='abc'", "a string with exactly one {text}"),
    ("model.encoder.batch_size=0", "model.encoder.batch_size=0", "a whole number >= 1 (texts per encoder pass)"),
    ("model.tuning.lr=0", "model.tuning.lr=0", "a number > 0.0 or null"),
    ("task=ranking task.loss=hinge", "task.loss='hinge'", "one of 'bpr', 'bce', 'softmax'"),
    ("task=ranking task.popularity_exponent=-1", "task.popularity_exponent=-1", "a number >= 0.0"),
    ("task=next_item task.max_length=0", "task.max_length=0", "a whole number >= 1"),
    ("model.dim=0", "model.dim=0", "a whole number >= 1 (the width of user and item vectors)"),
    ("model.optimizer.lr=abc", "model.optimizer.lr='abc'", "a number > 0.0"),
    ("model.optimizer.lr=0", "model.optimizer.lr=0", "a number > 0.0"),
    ("model.optimizer.weight_decay=-0.1", "model.optimizer.weight_decay=-0.1", "a number >= 0.0"),
    ("model.encoder.max_length=1", "model.encoder.max_length=1", "a whole number >= 2"),
    ("model.encoder.max_length=abc", "model.encoder.max_length='abc'", "a whole number >= 2"),
    ("model/head=mlp model.head.hidden=[-5]", "model.head.hidden=[-5]", "each a whole number >= 1"),
    ("model/head=mlp model.head.hidden=[]", "model.head.hidden=[]", "a non-empty list"),
    ("model/head=mlp model.head.dropout=1.0", "model.head.dropout=1.0", "a number in [0.0, 1.0)"),
    ("task=ranking model=ease_text model.baseline.text_weight=-1", "model.baseline.text_weight=-1", "a number >= 0.0"),
    ("task=ranking model=ease model.baseline.l2=0", "model.baseline.l2=0", "a number > 0.0"),
    ("task=ranking task.ks=[0]", "task.ks=[0]", "each a whole number >= 1"),
    ("task=ranking task.ks=abc", "task.ks='abc'", "a non-empty list"),
    ("task=ranking task.num_negatives=abc", "task.num_negatives='abc'", "a whole number >= 1"),
    ("task=ranking task.temperature=0", "task.temperature=0", "a number > 0.0"),
    ("seed=abc", "seed='abc'", "a whole number in [0, 4294967295]"),
    ("seed=-1", "seed=-1", "a whole number in [0, 4294967295]"),
    ("train=maybe", "train='maybe'", "true or false"),
]


@pytest.mark.parametrize(("override", "quoted", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_one_line_naming_key_value_and_expectation(override, quoted, expected, tmp_path):
    cfg = compose_train(override.split(), tmp_path, tmp_path / "cache")
    with pytest.raises(ConfigError) as info:
        build_data(cfg)
    message = str(info.value)
    assert message.startswith(f"{quoted}; expected ")
    assert expected in message
    assert "\n" not in message


def test_every_bad_value_is_listed_at_once(tmp_path):
    overrides = ["trainer.max_epochs=abc", "data.batch_size=0", "seed=x", "model.dim=0", "task=ranking", "task.ks=[0]"]
    cfg = compose_train(overrides, tmp_path, tmp_path / "c")
    problems = config_problems(cfg, declared_options(cfg, ENTRY_OPTIONS))
    keys = ["seed", "trainer.max_epochs", "task.ks", "data.batch_size", "model.dim"]
    assert [p.split("=")[0] for p in problems] == keys  # the entry point's options, then the config's in its order
    with pytest.raises(ConfigError, match=re.escape(" | ".join(problems) + " (5 bad values)")):
        check_run_config(cfg)


def test_seed_run_checks_before_seeding(tmp_path):
    # numpy would stop on this seed with a ValueError traceback inside seed_everything
    cfg = compose_train(["seed=4294967296"], tmp_path, tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"^seed=4294967296; expected a whole number in \[0, 4294967295\]$"):
        seed_run(cfg)


def test_absent_keys_are_skipped_and_unresolvable_ones_named():
    cfg = OmegaConf.create({"trainer": {"max_epochs": 3}, "model": {"dim": "${oc.env:LMREC_TEST_NO_SUCH_VAR}"}})
    assert (
        config_problems(cfg, [Option("trainer.max_epochs", (Whole(1),)), Option("data.batch_size", (Whole(1),))]) == []
    )
    with pytest.raises(ConfigError, match=r"^model.dim: cannot be resolved"):
        config_problems(cfg, [Option("model.dim", (Whole(1),))])


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (Whole(1, 3), [1, 3], [0, 4, 2.0, True, "2", None]),
        (Number(0.0, 1.0, open_low=True), [1e-9, 1, 0.5], [0, 0.0, 1.0001, float("nan"), float("inf"), False]),
    ],
)
def test_kinds_draw_the_line_where_they_say(kind, good, bad):
    assert all(kind.accepts(v) for v in good) and not any(kind.accepts(v) for v in bad)


@pytest.mark.parametrize("overrides", SHIPPED, ids=lambda o: " ".join(o) or "default")
def test_each_option_is_declared_once(overrides, tmp_path):
    cfg = compose_train(overrides, tmp_path, tmp_path / "cache")
    keys = [option.key for option in declared_options(cfg, ENTRY_OPTIONS)]
    assert len(keys) == len(set(keys))


def test_a_component_declares_its_options_where_it_is_defined(tmp_path):
    """The options checked at a node are its target's own: a task's under `task`, the datamodule's under `data`."""
    from lmrec.data.datamodule import RecDataModule
    from lmrec.tasks.ranking import RankingTask

    cfg = compose_train(["task=ranking"], tmp_path, tmp_path / "cache")
    keys = {option.key for option in declared_options(cfg)}
    assert {f"task.{o.key}" for o in RankingTask.config_options} <= keys
    assert {f"data.{o.key}" for o in RecDataModule.config_options} <= keys
    assert "model.dim" in keys and "model.encoder.max_length" in keys and "trainer.max_epochs" not in keys
