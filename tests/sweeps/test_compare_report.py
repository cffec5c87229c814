"""The `compare` node: a sweep that asks for it ends with the significance report (`lmrec.sweeps.compare_report`,
registered once), a sweep without it gets none, and a mistyped node stops the sweep before its first job."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.utils import JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from lmrec.compare.analysis import Options
from lmrec.config.location import config_dir
from lmrec.errors import ConfigError
from lmrec.sweeps.compare_report import CompareReport, requested_options, rerun_command
from tests.compare.test_report import fake_run
from tests.helpers import run_cli
from tests.wandb_records import read_run


def test_the_callback_is_registered_once_and_reads_the_node():
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="train", overrides=['+compare.baseline="item_tower=id"'], return_hydra_config=True)
    assert cfg.hydra.callbacks.compare._target_ == "lmrec.sweeps.compare_report.CompareReport"
    options = requested_options(cfg)
    assert (options.baseline, options.test, options.correction) == ("item_tower=id", "wilcoxon", "holm")
    assert requested_options(OmegaConf.create({})) is None
    assert requested_options(OmegaConf.create({"compare": None})) is None
    node = {"compare": {"metrics": "mrr@10", "test": "t", "correction": "bonferroni", "alpha": 0.01}}
    assert requested_options(OmegaConf.create(node)).metrics == ["mrr@10"]


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"tset": "t"}, r"compare.tset: not an option of the comparison \(baseline, metrics"),
        ({"test": "mannwhitney"}, r"compare.test='mannwhitney'; expected one of t, wilcoxon, permutation"),
        ({"correction": "sidak"}, r"compare.correction='sidak'"),
        ({"alpha": 5}, r"compare.alpha=5"),
        ({"permutations": -1}, r"compare.permutations=-1"),
        ("item_tower=id", r"compare='item_tower=id'; expected a mapping"),
    ],
)
def test_a_bad_node_is_a_config_error_naming_the_key(node, message):
    with pytest.raises(ConfigError, match=message):
        requested_options(OmegaConf.create({"compare": node}))


def test_without_the_node_the_callback_does_nothing(tmp_path):
    fake_run(tmp_path / "a", ["model=a"], 1, {"ndcg@10": [0.1, 0.2, 0.3]})
    CompareReport(wandb_project="lmrec").on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_comparison_that_cannot_be_made_at_the_end_is_one_error_line_with_the_command_to_retry(tmp_path, caplog):
    for name in ("a", "b"):
        fake_run(tmp_path / name, [f"model={name}"], 1, {"ndcg@10": [0.1, 0.2, 0.3]})
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}, "compare": {"baseline": "model=c"}})
    CompareReport(wandb_project=None).on_multirun_end(config)
    assert not (tmp_path / "compare").exists()
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "baseline 'model=c' matches none" in record.getMessage()
    assert f"retry: lmrec-compare {tmp_path} --baseline 'model=c'" in record.getMessage()
    assert rerun_command(tmp_path, Options(metrics=["mae"])).endswith("--metrics mae --split test --test wilcoxon "
                                                                      "--correction holm")  # fmt: skip


def test_a_failed_job_says_there_will_be_no_report_and_how_to_make_it(tmp_path, caplog):
    hydra = {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(tmp_path)}}
    config = OmegaConf.create({"hydra": hydra, "compare": {"baseline": "model=a"}})
    callback = CompareReport(wandb_project=None)
    callback.on_job_end(config, SimpleNamespace(status=JobStatus.COMPLETED))
    assert not caplog.records
    callback.on_job_end(config, SimpleNamespace(status=JobStatus.FAILED))
    (record,) = caplog.records
    assert "without its comparison report" in record.getMessage() and f"lmrec-compare {tmp_path}" in record.getMessage()


def test_a_mistyped_node_stops_the_sweep_before_its_first_job(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "model=pop", "task=ranking", "+compare.tset=t", f"hydra.sweep.dir={sweep}", "logger=csv"]
    result = run_cli("lmrec-train", args, tmp_path, ok=False)
    assert result.returncode == 2 and not sweep.exists()
    assert "ConfigError: compare.tset: not an option of the comparison" in result.stdout + result.stderr


def test_a_sweep_with_a_compare_node_ends_with_the_report_and_logs_it_to_wandb(tmp_path):
    """Two fitted baselines × two seeds on 40 users, users bucketed by activity: about 15 s on 2 cores."""
    sweep = tmp_path / "sweep"
    args = ["-m", "task=ranking", "model=pop,ease", "seed=1,2", "data.max_users=40", "logger=csv",
            "task.buckets={users:{quantiles:2}}", '+compare.baseline="model=pop"', f"hydra.sweep.dir={sweep}",
            f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    result = run_cli("lmrec-train", args, tmp_path)
    report = sweep / "compare"
    assert {p.name for p in report.iterdir()} == {
        "comparison.md", "comparison.tex", "comparison.json", "comparison.csv", "comparison_metrics.png",
        "comparison_buckets.png", "comparison_cost.png"}  # fmt: skip
    markdown = (report / "comparison.md").read_text()
    assert markdown in result.stdout and f"report written to {report}" in result.stdout
    assert "| model=ease | 2 |" in markdown and "baseline `model=pop`" in markdown
    assert "### ndcg@10 by bucket" in markdown
    comparison = json.loads((report / "comparison.json").read_text())
    assert [c["label"] for c in comparison["configurations"]] == ["model=pop", "model=ease"]
    assert [c["seeds"] for c in comparison["configurations"]] == [[1, 2], [1, 2]]
    (run_file,) = (sweep / "wandb").glob("offline-run-*/run-*.wandb")  # one W&B run for the report
    logged = read_run(run_file)
    assert logged["job_type"] == "comparison"
    logged_keys = {key.split("/", 1)[0] for key in logged["history_keys"]}
    assert {"significance", "metrics_plot", "buckets_plot", "cost_plot"} <= logged_keys
