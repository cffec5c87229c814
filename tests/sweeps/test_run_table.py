"""`lmrec.sweeps.run_table`: run folders read into rows, rows rendered, runs averaged over seeds, the bar plot."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from lmrec.errors import MissingInputError, RunFolderError
from lmrec.sweeps.run_table import (
    group_runs,
    grouped_markdown,
    metric_columns,
    plot_groups,
    read_run,
    runs_under,
    status_records,
    sweep_runs,
    to_csv,
    to_markdown,
)
from tests.sweeps.fake_runs import run_info, write_run


def test_a_run_folder_says_its_overrides_results_and_status(tmp_path):
    done = write_run(
        tmp_path / "0",
        ["model=ease", "+logger.wandb.api_key=abc"],
        metrics={"test/ndcg@10": 0.25},
        info=run_info(7, encoding={"width": 384}),
        config={"model": {"name": "ease", "encoder": {"name_or_path": "org/minilm"}}},
    )
    run = read_run(done)
    assert run.name == "0" and run.overrides == ["model=ease", "+logger.wandb.api_key=***"]  # tables are shared
    assert run.finished and run.outcome == "COMPLETED" and run.metrics == {"test/ndcg@10": 0.25}
    assert run.fact("params.trainable") == 7 and run.fact("encoding.width") == 384 and run.fact("encoding.x") is None
    assert run.config_value("model.encoder.name_or_path") == "org/minilm" and run.config_value("no.such") is None

    failed = write_run(tmp_path / "1", ["model=pop"], job_status={"job": 1, "status": "FAILED", "error": "E: x"})
    assert (read_run(failed).outcome, read_run(failed).error) == ("FAILED", "E: x")
    assert read_run(write_run(tmp_path / "2", ["model=als"])).outcome == "RUNNING"  # nothing recorded yet
    assert read_run(tmp_path / "2", status="FAILED").outcome == "FAILED"  # what the caller knows of the job
    lost = write_run(tmp_path / "3", [], metrics={"a": 1.0}, job_status={"job": 3, "status": "COMPLETED"})
    assert read_run(lost).outcome == "COMPLETED (no metrics)"  # no run.json: the results are incomplete


def test_damaged_overrides_are_a_run_folder_error(tmp_path):
    run_dir = write_run(tmp_path / "0", [])
    (run_dir / ".hydra" / "overrides.yaml").write_text("{a: [")
    with pytest.raises(RunFolderError, match="overrides.yaml is not valid YAML"):
        read_run(run_dir)


def test_sweep_jobs_come_in_job_order_and_status_rows_by_job(tmp_path):
    for job in ("10", "2", "0"):
        write_run(tmp_path / job, [f"seed={job}"], job_status={"job": int(job), "status": "COMPLETED"})
    (tmp_path / "notes").mkdir()  # not a job: no .hydra/
    assert [run.name for run in sweep_runs(tmp_path)] == ["0", "2", "10"]
    assert [record["job"] for record in status_records(tmp_path)] == [0, 2, 10]


def test_rows_render_as_csv_with_full_values_and_markdown_with_escaped_cells():
    rows = [{"job": 1, "label": "a|b\nc", "value": 0.123456, "trainable": 12345, "cache_hit": True, "extra": 1}]
    columns = ["job", "label", "value", "trainable", "cache_hit", "missing"]
    assert list(csv.DictReader(io.StringIO(to_csv(rows, columns)))) == [
        {"job": "1", "label": "a|b\nc", "value": "0.123456", "trainable": "12345", "cache_hit": "True", "missing": ""}
    ]
    lines = to_markdown(rows, columns, titles={"cache_hit": "cache hit"}).splitlines()
    assert lines == [
        "| job | label | value | trainable | cache hit | missing |",
        "|---|---|---|---|---|---|",
        "| 1 | a\\|b c | 0.1235 | 12,345 | yes |  |",
    ]


def test_metric_columns_put_test_metrics_first_and_numbers_in_order():
    names = ["best/val/ndcg@10", "test/ndcg@10", "test/ndcg@5", "test/auc", "epoch"]
    assert metric_columns(names) == ["test/auc", "test/ndcg@5", "test/ndcg@10", "best/val/ndcg@10", "epoch"]


@pytest.fixture
def seeded_runs(tmp_path):
    """Two configurations over three and two seeds, plus a run of another configuration without run.json."""
    scores = {("pop", 1): 0.10, ("pop", 2): 0.14, ("pop", 3): 0.13, ("ease", 1): 0.30, ("ease", 2): 0.26}
    for job, ((model, seed), ndcg) in enumerate(scores.items()):
        overrides = [f"model={model}", f"seed={seed}", "logger=csv", f"paths.log_dir=/x/{job}"]
        metrics = {"test/ndcg@10": ndcg, "test/rmse": 1 - ndcg}
        write_run(tmp_path / "sweep" / str(job), overrides, metrics, run_info(100 + job))
    write_run(tmp_path / "other" / "run", ["model=als"], {"test/ndcg@10": 0.2})
    return tmp_path, scores


def test_runs_averaged_over_seeds_give_mean_and_sample_std(seeded_runs):
    root, scores = seeded_runs
    groups = group_runs(runs_under(root), ["seed"])
    assert [(g.name, len(g.runs)) for g in groups] == [("model=als", 1), ("model=pop", 3), ("model=ease", 2)]
    table = grouped_markdown(groups, ["test/ndcg@10", "test/auc"]).splitlines()
    assert table[0] == "| run | test/ndcg@10 | test/auc | runs | trainable params |"
    for line, model in zip(table[3:], ("pop", "ease"), strict=True):
        values = np.array([v for (m, _), v in scores.items() if m == model])
        expected = f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"
        assert line.startswith(f"| model={model} | {expected} |  | {len(values)} | ")
    assert table[2] == "| model=als | 0.2000 |  | 1 | None |"  # one run: no ±; no run.json: size unknown
    assert table[3].endswith("| 102 |")  # the size the group's last run recorded


def test_without_averaging_every_run_is_its_own_row_named_by_what_it_varies(seeded_runs):
    root, scores = seeded_runs
    groups = group_runs(runs_under(root / "sweep"))
    assert [g.name for g in groups] == [f"model={m} seed={s}" for m, s in scores]  # logger=, paths. are hidden


def test_the_bar_plot_is_written_for_the_metrics_runs_have(seeded_runs, tmp_path):
    pytest.importorskip("matplotlib")
    groups = group_runs(runs_under(seeded_runs[0]), ["seed"])
    path = plot_groups(groups, ["test/ndcg@10", "test/rmse", "test/auc"], tmp_path / "plots" / "bars.png")
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    assert plot_groups(groups, ["test/auc"], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_a_folder_without_runs_is_a_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        runs_under(tmp_path / "nowhere")
    with pytest.raises(MissingInputError, match="no metrics.json under"):
        runs_under(tmp_path)
