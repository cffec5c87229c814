"""Bad config values and bad data fail early, with a message naming what to fix, and leave nothing behind."""

from __future__ import annotations

import json
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
from lmrec.runs.folder import config_sha256
from lmrec.runs.split_export import export_split
from tests.helpers import build_model, compose_train, run_cli


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
        ("+data.source.rating_min=5", "data.source.rating_min=5.0 must be below"),
        ("task=ranking task.ks=[0,10]", "task.ks"),
        # values of the wrong type, and keys a component does not have: one-line ConfigErrors naming the key
        ("data.batch_size=abc", "data.batch_size='abc'; expected a whole number >= 1"),
        ("data.source.max_tags=abc", "data.source (lmrec.data.sources.movielens.MovieLensLatest): ValueError"),
        ("task=ranking task.num_negatives=abc", "task.num_negatives='abc'; expected a whole number >= 1"),
        ("+data.source.min_timestamp=abc", "data.source.min_timestamp='abc'; expected Unix seconds"),
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
        (["+model.head.width=3"], "model.head (lmrec.model.heads.DotHead)"),
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
        info = json.loads((run_dir / "run.json").read_text())  # the records of a run that trained so
        info["config_sha256"] = config_sha256(saved)
        (run_dir / "run.json").write_text(json.dumps(info))
        with pytest.raises(ConfigError, match="pass accelerator=cpu"):
            evaluate(_eval_cfg(run_dir, tmp_path / "eval3", tmp_path / "fresh-cache"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.precision=bogus", "trainer.precision='bogus'; expected one of 64, 32, 16"),  # lmrec.config.validate
        ("trainer.accelerator=bogus", "pytorch_lightning.Trainer: You selected an invalid accelerator"),  # Lightning
    ],
)
def test_bad_trainer_option_fails_before_any_data_work(override, message, tmp_path):
    cfg = compose_train([override, "logger=csv"], tmp_path / "out", tmp_path / "cache")
    with pytest.raises(ConfigError, match=re.escape(message)):
        train(cfg, tmp_path / "out")
    assert not (tmp_path / "cache").exists()


# -- checked before anything is built (lmrec.config.validate), through every entry point ----------------------------
def test_max_epochs_of_the_wrong_type_stops_lmrec_train_with_exit_code_2(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    result = run_cli(
        "lmrec-train",
        ["trainer.max_epochs=abc", "logger=csv", f"hydra.run.dir={out}", f"paths.cache_dir={cache}"],
        tmp_path,
        ok=False,
    )
    assert result.returncode == 2
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "ConfigError" in line]
    assert len(errors) == 1 and errors[0].endswith(
        "ConfigError: trainer.max_epochs='abc'; expected a whole number >= 1, one of -1 or null (-1: no limit; 0 would "
        "train nothing, train=false tests the initial weights)"
    )
    assert "Traceback" not in result.stderr
    assert not cache.exists()  # neither the processed data nor the item embeddings were written


def test_bad_values_stop_train_before_the_data_is_read(tmp_path):
    cfg = compose_train(["trainer.max_epochs=abc", "model.dim=0", "logger=csv"], tmp_path / "out", tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"^trainer.max_epochs='abc'; .* \| model.dim=0; .* \(2 bad values\)$"):
        train(cfg, tmp_path / "out")
    assert not (tmp_path / "cache").exists()


def test_lmrec_eval_checks_the_saved_config_before_loading_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    cfg = compose_train(["data.max_users=20"], run_dir, tmp_path / "cache")
    cfg.trainer.max_epochs = "abc"  # e.g. a config edited by hand
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "best.ckpt").write_bytes(b"not a checkpoint")  # would be a CheckpointError
    eval_cfg = _eval_cfg(run_dir / "checkpoints" / "best.ckpt", tmp_path / "eval", tmp_path / "eval-cache")
    with pytest.raises(ConfigError, match=r"^trainer.max_epochs='abc'; expected a whole number"):
        evaluate(eval_cfg)
    assert not (tmp_path / "eval-cache").exists()


def test_mlp_head_with_a_negative_width_is_a_config_error_not_a_torch_error(tmp_path):
    from lmrec.model.heads import MLPHead

    with pytest.raises(ConfigError, match=re.escape("model.head.hidden=[-5]; expected a non-empty list, each a")):
        MLPHead(dim=4, hidden=[-5])
    with pytest.raises(ConfigError, match=re.escape("model.head.dropout=1.5; expected a number in [0.0, 1.0)")):
        MLPHead(dim=4, hidden=[8], dropout=1.5)
    cfg = compose_train(["model/head=mlp", "model.head.hidden=[-5]"], tmp_path, tmp_path / "cache")
    with pytest.raises(ConfigError, match=re.escape("model.head.hidden=[-5]; expected a non-empty list, each a")):
        build_data(cfg)


# -- bad data: refused with file, line and column before any encoding ------------------------------------------------
def _negative_user(lines: list[str]) -> str:
    lines[5] = "-" + lines[5]  # a damaged field: user -1 would have become a new user
    return "\n"


def _last_line_cut_short(lines: list[str]) -> str:
    lines[-1] = lines[-1][: lines[-1].rindex(",") + 6]  # 1493846415 -> 14938, i.e. 1970, and no line end
    return ""


@pytest.mark.parametrize(
    ("edit", "where", "message"),
    [
        (_negative_user, "ratings.csv:6: column 'userId'", "expected an integer user id >= 1, got -1"),
        (
            _last_line_cut_short,
            "ratings.csv:100837: column 'timestamp'",
            "788918400 (1995-01-01) and 9999999999 (2286-11-20), got 14938 (the file's last line has no line end",
        ),
    ],
)
def test_bad_rows_stop_train_before_encoding(edit, where, message, bundled_data, tmp_path):
    root = _copy_data(bundled_data, tmp_path / "data" / "ml-latest-small")
    lines = (root / "ratings.csv").read_text().splitlines()
    end = edit(lines)
    (root / "ratings.csv").write_text("\n".join(lines) + end)
    cfg = compose_train(["logger=csv", f"paths.data_dir={tmp_path / 'data'}"], tmp_path / "out", tmp_path / "cache")
    with pytest.raises(DataValidationError) as info:
        train(cfg, tmp_path / "out")
    assert str(info.value).startswith(f"{root / where}: ") and message in str(info.value)
    assert not (tmp_path / "cache" / "item_embeddings").exists()


def test_bad_row_through_lmrec_train_exits_with_code_2(bundled_data, tmp_path):
    root = _copy_data(bundled_data, tmp_path / "data" / "ml-latest-small")
    text = (root / "movies.csv").read_text().replace("\n2,Jumanji", "\n0,Jumanji", 1)
    (root / "movies.csv").write_text(text)
    cache = tmp_path / "cache"
    result = run_cli(
        "lmrec-train",
        [
            "logger=csv",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={tmp_path / 'out'}",
            f"paths.cache_dir={cache}",
        ],
        tmp_path,
        ok=False,
    )
    assert result.returncode == 2
    assert (
        f"DataValidationError: {root / 'movies.csv'}:3: column 'movieId': expected an integer movie id >= 1, got 0"
        in (result.stdout + result.stderr)
    )
    assert not (cache / "item_embeddings").exists()


# -- the text tower: no room for text is refused; collapsed or truncated texts are reported -------------------------
def test_max_length_that_only_holds_special_tokens_is_refused_before_encoding(tiny_bert_dir, tmp_path):
    base = ["data.max_users=20", f"model.encoder.name_or_path={tiny_bert_dir}"]
    cfg = compose_train([*base, "model.encoder.max_length=2"], tmp_path, tmp_path / "cache")
    task, datamodule = build_data(cfg)
    datamodule.prepare()
    with pytest.raises(
        ConfigError, match=r"max_length=2 leaves no token for the item text: .* take 2; expected at least 3"
    ):
        build_model(cfg, datamodule, task)
    assert not (tmp_path / "cache" / "item_embeddings").exists()
    prompt = 'model.encoder.prompt="Item: {text} means"'
    cfg = compose_train([*base, "model.encoder.max_length=4", prompt], tmp_path, tmp_path / "cache")
    with pytest.raises(ConfigError, match="the special tokens and the prompt take 5; expected at least 6"):
        build_model(cfg, datamodule, task)


def test_identical_item_vectors_are_reported(tiny_bert_dir, caplog):
    from lmrec.encoders.text_encoder import TextEncoder
    from lmrec.encoders.text_sources import FrozenTextTable

    texts = ["Toy Story (1995). Genres: Animation", "Heat (1995)", "Jumanji", "A much longer title about nothing"]
    # the embedding layer's output at the [CLS] position is the same for every text: a tower without information
    vectors = TextEncoder(str(tiny_bert_dir), pooling="cls", layer=0).encode(texts, show_progress=False)
    assert float((vectors - vectors[0]).abs().max()) < 1e-5
    with caplog.at_level(logging.WARNING, logger="lmrec.encoders.text_sources"):
        FrozenTextTable(vectors)
    assert "all 4 item text vectors are the same vector" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lmrec.encoders.text_sources"):
        FrozenTextTable(TextEncoder(str(tiny_bert_dir)).encode(texts, show_progress=False))  # mean pooling: distinct
        FrozenTextTable(torch.zeros(1, 8))  # one row (the builder's stand-in) is no collapse
    assert caplog.text == ""


def test_truncated_texts_are_counted_in_a_warning(tiny_bert_dir, caplog):
    from transformers import AutoTokenizer

    from lmrec.encoders.text_encoder import TextEncoder
    from lmrec.encoders.text_sources import FrozenTextTable, TunedTextEncoder

    texts = ["Toy Story (1995). Genres: Animation, Children", "Heat", "Jumanji (1995). Genres: Adventure"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    longer = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) > 4 for t in texts)  # 6 - [CLS], [SEP]
    assert longer == 2
    with caplog.at_level(logging.WARNING, logger="lmrec.encoders.text_sources"):
        TunedTextEncoder(TextEncoder(str(tiny_bert_dir), max_length=6), texts)
    assert (
        "2 of 3 item texts (66.7%) were cut at model.encoder.max_length=6 tokens; most item texts lose" in caplog.text
    )
    caplog.clear()
    report = {"cache_hit": True, "truncated": 1, "texts": 4, "max_length": 32}  # an embedding cache hit
    with caplog.at_level(logging.WARNING, logger="lmrec.encoders.text_sources"):
        FrozenTextTable(torch.randn(4, 8), encoding=report)
    assert "1 of 4 item texts (25.0%) were cut at model.encoder.max_length=32 tokens\n" in caplog.text + "\n"
