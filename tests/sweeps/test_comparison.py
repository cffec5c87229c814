"""The comparison callback: one registration, a table only where the config's `comparison` node asks for one, with
the columns of its kind (`lmrec.sweeps.comparison`, `lmrec.sweeps.encoder_scale`)."""

from __future__ import annotations

import csv
import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from lmrec.config.location import config_dir
from lmrec.errors import ConfigError
from lmrec.sweeps import encoder_scale
from lmrec.sweeps.comparison import COLUMNS, KINDS, ComparisonTable, requested_table, write_requested
from tests.helpers import run_cli
from tests.sweeps.fake_runs import run_info, write_run


def _compose(overrides: list[str]):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize(
    ("experiment", "label", "name", "kind"),
    [
        ("baselines", "model.name", "baselines", "comparison"),
        ("baselines_rating", "model.name", "baselines_rating", "comparison"),
        ("tuning_comparison", "model.tuning.name", "tuning_comparison", "comparison"),
        ("encoder_scale", "model.encoder.name_or_path", "encoder_scale", "encoder_scale"),
    ],
)
def test_experiments_ask_for_their_table_from_the_one_registered_callback(experiment, label, name, kind):
    cfg = _compose([f"experiment={experiment}"])
    assert cfg.hydra.callbacks.comparison._target_ == "lmrec.sweeps.comparison.ComparisonTable"
    request = requested_table(cfg)
    assert (request.label, request.name, request.kind) == (label, name, KINDS[kind])


def test_no_comparison_node_means_no_table_and_a_bad_node_is_a_config_error():
    assert requested_table(_compose([])) is None
    assert requested_table(OmegaConf.create({"comparison": None})) is None
    request = requested_table(OmegaConf.create({"comparison": {"kind": "encoder_scale"}}))
    assert (request.label, request.name) == ("model.encoder.name_or_path", "encoder_scale")  # the kind's defaults
    with pytest.raises(ConfigError, match=r"comparison.kind='bogus'; expected one of comparison, encoder_scale"):
        requested_table(OmegaConf.create({"comparison": {"kind": "bogus"}}))
    with pytest.raises(ConfigError, match=r"comparison.lable: not an option"):
        requested_table(OmegaConf.create({"comparison": {"lable": "model.name"}}))


def _sweep(tmp_path):
    """Two finished jobs of different encoder sizes, one failed and one still running."""
    sweep = tmp_path / "sweep"
    for job, (encoder, params, ndcg) in enumerate([("org/small", 20_000_000, 0.2), ("org/big", 110_000_000, 0.3)]):
        facts = {"encoding": {"width": 384, "encode_seconds": 5.0, "cache_hit": False}, "seconds_per_epoch": 2.0}
        info = run_info(1000 + job, **facts)
        info["params"]["encoder_frozen"] = params
        config = {"model": {"name": "mlp", "encoder": {"name_or_path": encoder}}}
        write_run(sweep / str(job), [f"e={encoder}"], {"test/ndcg@10": ndcg}, info, config)
    write_run(sweep / "2", ["e=x"], job_status={"job": 2, "status": "FAILED", "error": "E"})
    write_run(sweep / "3", ["e=y"])
    return sweep


def test_the_comparison_table_lists_every_job_with_its_results_or_status(tmp_path):
    sweep = _sweep(tmp_path)
    request = requested_table(OmegaConf.create({"comparison": {"label": "model.encoder.name_or_path", "name": "t"}}))
    rows, csv_path, plot = write_requested(request, sweep, {sweep / "3": "FAILED"})
    assert plot is None and csv_path == sweep / "t.csv"
    table = list(csv.DictReader(csv_path.open()))
    assert list(table[0]) == list(COLUMNS)
    assert [(r["label"], r["status"], r["value"]) for r in table] == [
        ("org/small", "completed", "0.2"),
        ("org/big", "completed", "0.3"),
        ("", "failed", ""),
        ("", "failed", ""),  # what the callback knew of the job that just ended
    ]
    assert table[1]["metric"] == "test/ndcg@10" and table[1]["trainable"] == "1001"
    markdown = (sweep / "t.md").read_text()
    assert "| 1 | org/big | completed | test/ndcg@10 | 0.3000 | 1,001 | 1.5000 |  | 2.0000 |  |  |" in markdown


def test_the_encoder_scale_kind_adds_encoder_size_encoding_cost_and_a_plot(tmp_path):
    pytest.importorskip("matplotlib")
    sweep = _sweep(tmp_path)
    request = requested_table(OmegaConf.create({"comparison": {"kind": "encoder_scale"}}))
    rows, csv_path, plot = write_requested(request, sweep)
    table = list(csv.DictReader(csv_path.open()))
    assert csv_path.name == "encoder_scale.csv" and list(table[0]) == list(encoder_scale.COLUMNS)
    assert [(r["encoder_params"], r["width"], r["cache_hit"]) for r in table[:2]] == [
        ("20000000", "384", "False"),
        ("110000000", "384", "False"),
    ]
    assert [r["status"] for r in table[2:]] == ["failed", "running"]
    assert plot == sweep / "encoder_scale.png" and plot.read_bytes().startswith(b"\x89PNG")


def test_the_callback_acts_only_in_a_multirun_whose_config_asks_for_a_table(tmp_path):
    sweep = _sweep(tmp_path)
    job_return = type("JobReturn", (), {"status": JobStatus.COMPLETED})()
    callback = ComparisonTable(wandb_project=None)
    hydra = {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(sweep)}, "runtime": {"output_dir": str(sweep / "0")}}
    callback.on_job_end(OmegaConf.create({"hydra": hydra}), job_return)
    callback.on_multirun_end(OmegaConf.create({"hydra": hydra}))
    assert not list(sweep.glob("*.csv"))
    single = {"hydra": {**hydra, "mode": RunMode.RUN}, "comparison": {"name": "t"}}
    callback.on_job_end(OmegaConf.create(single), job_return)
    assert not list(sweep.glob("*.csv"))
    callback.on_job_end(OmegaConf.create({"hydra": hydra, "comparison": {"name": "t"}}), job_return)
    assert (sweep / "t.csv").is_file() and (sweep / "t.md").is_file()


def test_a_baselines_sweep_writes_its_table_and_a_plain_multirun_none(tmp_path):
    common = ["data.max_users=40", "logger=csv", f"paths.cache_dir={tmp_path / 'cache'}"]
    plain = tmp_path / "plain"
    run_cli("lmrec-train", ["-m", "model=pop", "task=ranking", f"hydra.sweep.dir={plain}", *common], tmp_path)
    assert (plain / "summary.csv").is_file() and sorted(p.name for p in plain.glob("*.csv")) == ["summary.csv"]
    assert not (plain / "wandb").exists()  # no table, so no W&B run for one either

    sweep = tmp_path / "baselines"
    args = ["experiment=baselines", "model=pop,ease", f"hydra.sweep.dir={sweep}", *common]  # als needs `implicit`
    result = run_cli("lmrec-train", args, tmp_path)
    rows = list(csv.DictReader((sweep / "baselines.csv").open()))
    assert [(r["label"], r["status"]) for r in rows] == [("pop", "completed"), ("ease", "completed")]
    for row in rows:
        metrics = json.loads((sweep / row["job"] / "metrics.json").read_text())
        assert row["metric"] == "test/ndcg@10" and float(row["value"]) == pytest.approx(metrics["test/ndcg@10"])
    assert (sweep / "baselines.md").read_text().count("\n") == 2 + len(rows)
    assert "baselines (2 jobs), also in" in result.stdout
