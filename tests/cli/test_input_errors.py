"""Bad config values and bad data fail early, with a message naming what to fix, and leave nothing behind."""

from __future__ import annotations

import logging
import re
import shutil

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from lmrec.cli.components import build_data
from lmrec.cli.eval import evaluate
from lmrec.cli.train import train
from lmrec.config.compose import compose_config
from lmrec.data.datamodule import RecDataModule
from lmrec.data.io.errors import DataValidationError
from lmrec.data.sources.movielens import MovieLensLatest
from lmrec.errors import ConfigError, InputError
from lmrec.model.build import build_model
from lmrec.runs.split_export import export_split
from tests.helpers import compose_train


def _data(root, cache=None, **options) -> RecDataModule:
    return RecDataModule(MovieLensLatest(root), cache_dir=str(cache) if cache else None, **options)


def _copy_data(bundled_data, target):
    target.mkdir(parents=True)
    for name in ("ratings.csv", "movies.csv", "tags.csv"):
        shutil.copy(bundled_data / name, target / name)
    return target


def test_monitor_must_be_a_metric_of_the_task(tmp_path):
    cfg = compose_train(["task=ranking", "task.ks=[5,20]"], tmp_path, tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"task.monitor=val/ndcg@10 .* val/ndcg@5, val/ndcg@20"):
        build_data(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.split.ratios=[1,0,0]", "the val split is empty"),
        ("data.max_users=0", "data.max_users=0"),
        ("data.split.ratios=[1,1]", "data.split.ratios"),
        ("task=ranking task.num_negatives=0", "task.num_negatives=0"),
        ('data.text.template=["{plot}"]', "uses field {plot}, which data source"),
        ("data.source.rating_min=5", "data.source.rating_min=5.0 must be below"),
        ("task=ranking task.ks=[0,10]", "task.ks"),
        # values of the wrong type, and keys a component does not have: one-line ConfigErrors naming the key
        ("data.batch_size=abc", "data (lmrec.data.datamodule.RecDataModule): TypeError"),
        ("data.source.max_tags=abc", "data.source (lmrec.data.sources.movielens.MovieLensLatest): ValueError"),
        ("task=ranking task.num_negatives=abc", "task (lmrec.tasks.ranking.RankingTask): ValueError"),
        ("+task.foo=1", "task (lmrec.tasks.rating.RatingTask): "),
        ("data.text.template=[1]", "data.text.template segment 1 is not a string"),
    ],
)
def test_bad_data_options_fail_while_loading(override, message, tmp_path):
    cfg = compose_train(
        [*override.split(), "data.max_users=20" if "max_users" not in override else "seed=1"], tmp_path, tmp_path / "c"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_data(cfg)[1].prepare()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model/item_tower=hybrid", "model.item_tower.combine=avg"], "model.item_tower.combine"),
        (["model.item_tower.project=false"], "model.item_tower.project=false"),
        (["model.encoder.pooling=max"], "model.encoder.pooling"),
        (["model.dim=0"], "model.dim=0"),
        (["model.encoder.batch_size=0"], "model.encoder.batch_size=0"),
        (["+model.head.width=3"], "model.head (lmrec.model.heads.DotHead)"),
        (["model/head=mlp", "model.head.hidden=[]"], "model.head.hidden"),
        (["model.optimizer.lr=-1"], "model.optimizer / model.scheduler: Invalid learning rate"),
        (["model.scheduler={_target_:torch.optim.lr_scheduler.StepLR,_partial_:true}"], "step_size"),
    ],
)
def test_bad_model_options_fail_before_the_encoder_runs(overrides, message, tmp_path):
    cfg = compose_train([*overrides, "data.max_users=20"], tmp_path, tmp_path / "cache")
    task, datamodule = build_data(cfg)
    datamodule.prepare()
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_model(cfg, datamodule, task)
    assert not (tmp_path / "cache" / "item_embeddings").exists()


def test_header_only_ratings_file_is_an_error(bundled_data, tmp_path):
    root = _copy_data(bundled_data, tmp_path / "data")
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DataValidationError, match="ratings.csv: no interactions to train on"):
        _data(root).prepare()


def test_dropped_rows_are_reported_again_on_a_cache_hit(bundled_data, tmp_path, caplog):
    root = _copy_data(bundled_data, tmp_path / "data")
    lines = (root / "ratings.csv").read_text().splitlines()
    lines[3] = "1,6,9.5,964982224"
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match=r"ratings.csv:4: column 'rating'"):
        _data(root, tmp_path / "c").prepare()
    first = _data(root, tmp_path / "c", drop_invalid=True).prepare()
    assert first.dropped == {"ratings.csv": {"rating out of range": 1}}
    assert len(first.interactions) == 100835
    with caplog.at_level(logging.WARNING, logger="lmrec.data.processed"):
        again = _data(root, tmp_path / "c", drop_invalid=True).prepare()
    assert again.cache_hit and again.dropped == first.dropped
    assert "1 rows were dropped" in caplog.text and "rating out of range" in caplog.text


def test_export_keeps_ratings_exact(bundled_data, tmp_path):
    root = _copy_data(bundled_data, tmp_path / "data")
    lines = (root / "ratings.csv").read_text().splitlines()
    lines[1] = "1,1,3.25,964982703"
    (root / "ratings.csv").write_text("\n".join(lines) + "\n")
    data = _data(root, max_users=1).prepare()
    paths = export_split(data, tmp_path / "split")
    exported = pd.concat([pd.read_csv(p, dtype=str) for p in paths.values()])
    assert ("1", "1", "3.25", "964982703") in set(map(tuple, exported.to_numpy()))
    assert not list((tmp_path / "split").glob(".*tmp"))


def _eval_cfg(run_dir, out, cache, **extra):
    cfg = compose_config("eval", [f"run={run_dir}"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        cfg.paths.cache_dir = str(cache)
        cfg.update(extra)
    return cfg


def test_eval_uses_checkpoint_embeddings_and_refuses_other_data(tiny_bert_dir, bundled_data, tmp_path):
    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_bert_dir, encoder)
    run_dir = tmp_path / "run"
    cfg = compose_train(
        ["logger=csv", "data.max_users=20", "trainer.max_epochs=1", f"model.encoder.name_or_path={encoder}"],
        run_dir,
        tmp_path / "cache",
    )
    metrics = train(cfg, run_dir)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    shutil.rmtree(encoder)  # the checkpoint holds the item embeddings: the encoder is no longer needed
    evaluated = evaluate(_eval_cfg(run_dir, tmp_path / "eval", tmp_path / "fresh-cache", accelerator="cpu"))
    assert evaluated == pytest.approx(metrics, abs=1e-7)

    other = _copy_data(bundled_data, tmp_path / "other" / "ml-latest-small")
    lines = (other / "ratings.csv").read_text().splitlines()
    lines[1] = "1,1,0.5,964982703"
    (other / "ratings.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="differs from the data the run trained on"):
        evaluate(_eval_cfg(run_dir, tmp_path / "eval2", tmp_path / "fresh-cache", data_dir=str(tmp_path / "other")))

    if not torch.cuda.is_available():  # a GPU-trained run on a CPU-only machine: say how to evaluate it anyway
        saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        saved.trainer.accelerator = "gpu"
        OmegaConf.save(saved, run_dir / ".hydra" / "config.yaml")
        with pytest.raises(ConfigError, match="pass accelerator=cpu"):
            evaluate(_eval_cfg(run_dir, tmp_path / "eval3", tmp_path / "fresh-cache"))


def test_bad_trainer_option_fails_before_any_data_work(tmp_path):
    cfg = compose_train(["trainer.precision=bogus", "logger=csv"], tmp_path / "out", tmp_path / "cache")
    with pytest.raises(ConfigError, match="pytorch_lightning.Trainer: Precision 'bogus' is invalid"):
        train(cfg, tmp_path / "out")
    assert not (tmp_path / "cache").exists()
