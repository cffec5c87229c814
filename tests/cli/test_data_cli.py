"""`lmrec-data stats` and the data card every `lmrec-train` run writes: figures, files, W&B, errors."""

from __future__ import annotations

import json
import time

import numpy as np
from pytorch_lightning.loggers import WandbLogger
from transformers import AutoTokenizer
from wandb.proto import wandb_internal_pb2 as pb

from lmrec.cli.data import main, token_counter
from lmrec.config.compose import compose_config
from lmrec.data.card import publish_card
from lmrec.data.datamodule import RecDataModule
from lmrec.encoders.resolve import packaged_minilm_path
from tests.data.test_protocols import TableSource, random_tables
from tests.wandb_records import _payloads, read_run

SLICE = ["data=movielens_small", "data.max_users=30"]


def test_stats_prints_the_table_and_writes_the_card(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps the table to the terminal; keep each row on one line
    args = ["stats", *SLICE, "data.split.strategy=temporal_loo", f"paths.cache_dir={tmp_path / 'cache'}"]
    assert main([*args, "--card", str(tmp_path / "card")]) == 0
    table = capsys.readouterr().out
    assert "interactions per user" in table and "text length, tokens" in table and "test split" in table
    assert "texts over the encoder's max_length" in table
    card = json.loads((tmp_path / "card" / "data_card.json").read_text())
    assert card["figures"]["users"] == 30 and card["figures"]["splits"]["test"]["interactions"] == 30
    assert (
        card["protocol"]["split"] == "temporal_loo" and card["protocol"]["source"]["options"]["duplicates"] == "error"
    )
    markdown = (tmp_path / "card" / "data_card.md").read_text()
    assert markdown.startswith("# Data card") and "| users | 30 |" in markdown and '"split": "temporal_loo"' in markdown
    assert main([*args, "--json"]) == 0  # from the cache, as JSON
    assert json.loads(capsys.readouterr().out)["figures"] == card["figures"]


def test_text_lengths_are_counted_under_the_configured_tokenizer(tmp_path):
    count, name, max_length = token_counter(compose_config("train", SLICE))
    texts = ["Toy Story (1995). Genres: Adventure", "Heat"]
    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path())
    assert count(texts).tolist() == [len(tokenizer(t)["input_ids"]) for t in texts]
    assert (name, max_length) == ("sentence-transformers/all-MiniLM-L6-v2", 128)
    assert token_counter(compose_config("train", [*SLICE, "model=ease"]))[0] is None  # no encoder: words


def test_bad_overrides_exit_with_code_2(tmp_path, caplog):
    assert main(["stats", "data=no_such_dataset"]) == 2
    assert main(["stats", *SLICE, "data.kcore.user=-3", f"paths.cache_dir={tmp_path}"]) == 2
    assert "data.kcore.user=-3" in caplog.text


def test_the_card_reaches_the_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="card-test")
    card = RecDataModule(TableSource(tmp_path, *random_tables(5)), split={"strategy": "cold_items"}).data_card()
    paths = publish_card(tmp_path / "run", card, [logger])
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(card))
    run_dir = logger.experiment.dir
    logger.experiment.finish()
    (record,) = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    summary = finished_summary(record)
    figures = card["figures"]
    assert summary["data/users"] == figures["users"] and summary["data/interactions"] == figures["interactions"]
    assert summary["data/test/cold_items"] == figures["splits"]["test"]["cold_items"] > 0
    assert np.isclose(summary["data/density"], figures["density"]) and run_dir
    assert logged_artifacts(record) == [("data_card", ["data_card.json", "data_card.md"])]


def finished_summary(path, wait: float = 20.0) -> dict:
    """The run file's summary once its exit record is there: in-process, W&B's core may still be writing the file
    when `finish()` returns (a subprocess test sees it only after the process ends)."""
    deadline = time.monotonic() + wait
    while (run := read_run(path))["exit_code"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    return run["summary"]


def logged_artifacts(path) -> list[tuple[str, list[str]]]:
    """(type, file names) of every artifact an offline W&B run file records."""
    found = []
    for payload in _payloads(path.read_bytes()):
        record = pb.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "artifact":
            found.append((record.artifact.type, sorted(m.path for m in record.artifact.manifest.contents)))
    return found
