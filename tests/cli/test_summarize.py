"""`lmrec-summarize`: one markdown table of the runs under a folder, averaged over seeds on request, and a plot."""

from __future__ import annotations

import statistics

import pytest

from lmrec.cli.summarize import main
from tests.helpers import run_cli
from tests.sweeps.fake_runs import run_info, write_run

#: (model, seed) -> (test/ndcg@10, test/recall@10)
SCORES = {
    ("pop", 1): (0.101, 0.20),
    ("pop", 2): (0.143, 0.22),
    ("pop", 3): (0.127, 0.25),
    ("ease", 1): (0.305, 0.41),
    ("ease", 2): (0.262, 0.40),
}


@pytest.fixture
def sweeps(tmp_path):
    """Two sweeps of one folder: pop over three seeds, ease over two (job 10 sorts after job 2)."""
    jobs = {("pop", 1): "a/0", ("pop", 2): "a/2", ("pop", 3): "a/10", ("ease", 1): "b/0", ("ease", 2): "b/1"}
    for (model, seed), folder in jobs.items():
        ndcg, recall = SCORES[model, seed]
        metrics = {"test/ndcg@10": ndcg, "test/recall@10": recall, "best/val/ndcg@10": 0.5}
        trainable = 0 if model == "pop" else 3068
        write_run(tmp_path / folder, [f"model={model}", f"seed={seed}", "logger=csv"], metrics, run_info(trainable))
    return tmp_path


def _rows(output: str) -> dict[str, list[str]]:
    lines = [line for line in output.splitlines() if line.startswith("| ")]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in line.strip("|").split(" | ")] for line in lines)}


def test_runs_averaged_over_seeds_show_mean_std_and_count(sweeps, capsys):
    assert main([str(sweeps), "--metrics", "test/ndcg@10", "test/recall@10", "test/auc", "--average-over", "seed"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows.pop("run") == ["test/ndcg@10", "test/recall@10", "test/auc", "runs", "trainable params"]
    assert list(rows) == ["model=pop", "model=ease"]
    for model, trainable in (("pop", "0"), ("ease", "3068")):
        runs = [scores for (m, _), scores in SCORES.items() if m == model]
        expected = [f"{statistics.mean(v):.4f} ± {statistics.stdev(v):.4f}" for v in zip(*runs, strict=True)]
        assert rows[f"model={model}"] == [*expected, "", str(len(runs)), trainable]


def test_without_averaging_each_run_is_a_row_in_job_order(sweeps, capsys):
    main([str(sweeps), "--metrics", "test/ndcg@10"])
    rows = _rows(capsys.readouterr().out)
    assert list(rows)[1:] == [f"model={m} seed={s}" for m, s in SCORES]  # logger=csv names no configuration
    assert rows["model=pop seed=3"] == [f"{SCORES['pop', 3][0]:.4f}", "1", "0"]


def test_the_plot_is_written(sweeps, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "plots" / "bars.png"
    main([str(sweeps), "--average-over", "seed", "--plot", str(plot)])
    assert plot.read_bytes().startswith(b"\x89PNG") and f"plot written to {plot}" in capsys.readouterr().out


@pytest.mark.parametrize(("root", "message"), [("missing", "does not exist"), ("empty", "no metrics.json under")])
def test_a_bad_root_is_one_line_on_stderr_and_exit_code_2(tmp_path, root, message):
    (tmp_path / "empty" / "0").mkdir(parents=True)
    result = run_cli("lmrec-summarize", [str(tmp_path / root)], tmp_path, ok=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [result.stderr.strip()] and "Traceback" not in result.stderr
    assert result.stderr.startswith("MissingInputError: ") and message in result.stderr
