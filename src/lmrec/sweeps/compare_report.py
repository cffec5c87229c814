"""A sweep that ends with its significance report: the `compare` node of a config asks for one.

    lmrec-train -m model/item_tower=id,text,hybrid seed=1,2,3 '+compare.baseline="item_tower=id"'

After the last job, `CompareReport` (registered once in conf/hydra/default.yaml) runs `lmrec-compare` over the sweep
folder: `<sweep dir>/compare/comparison.{md,tex,json,csv}` and the plots, the markdown printed, and the table and
plots logged to W&B beside the jobs' runs. The node holds the options of `lmrec.compare.api.compare` (baseline,
metrics, split, test, correction, alpha, permutations, resamples, confidence, seed); it is checked before the first
job, so a mistyped one fails at once rather than after hours of training. Without the node nothing is done; a bad
node ends the sweep before it starts (one line, exit code 2). A comparison that cannot be made once the jobs are
done (a baseline that matches no configuration, runs that cannot be paired) is logged as one error line with the
`lmrec-compare` command to rerun: the jobs' results are on disk and stay valid. A sweep with a failed job never
reaches `on_multirun_end` (Hydra raises the job's error first), so the failed job's log says there will be no report
and gives that command.

The baseline holds `=`, which Hydra's override grammar reserves: quote it (`'+compare.baseline="item_tower=id"'`)
or escape it (`+compare.baseline=item_tower\\=id`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lmrec.compare.analysis import Comparison, Options
from lmrec.compare.api import make_options
from lmrec.errors import ConfigError, InputError, report_input_errors
from lmrec.runtime.distributed import process_rank
from lmrec.sweeps.comparison import log_to_wandb, wandb_group_of

log = logging.getLogger(__name__)
REPORT_DIR = "compare"


def requested_options(config: DictConfig) -> Options | None:
    """The comparison the config's `compare` node asks for, or None without one (or `compare: null`)."""
    node = OmegaConf.select(config, "compare", default=None)
    if node is None:
        return None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"compare={node!r}; expected a mapping of comparison options, e.g. compare.baseline")
    return make_options(OmegaConf.to_container(node, resolve=True), where="compare.")  # type: ignore[arg-type]


def log_report_to_wandb(
    comparison: Comparison | dict[str, Any], written: dict[str, Path], project: str, group: str, save_dir: Path
) -> None:
    """The report's CSV rows as a W&B table and its plots as images, in one run of `group` (offline without
    credentials): `lmrec.sweeps.comparison.log_to_wandb`, which the sweep comparison tables use too."""
    from lmrec.compare.records import csv_columns, csv_rows, without_nan
    from lmrec.compare.report import as_dict

    rows = [without_nan(row) for row in csv_rows(as_dict(comparison))]
    images = {key: path for key, path in written.items() if key.endswith("_plot")}
    log_to_wandb(rows, "significance", project, group, Path(save_dir), tuple(csv_columns(rows)), images)


def rerun_command(sweep_dir: Path, options: Options) -> str:
    """The `lmrec-compare` command that makes the same comparison (printed when it failed at the sweep's end)."""
    parts = ["lmrec-compare", str(sweep_dir)]
    if options.baseline is not None:
        parts += ["--baseline", f"'{options.baseline}'"]
    if options.metrics:
        parts += ["--metrics", *options.metrics]
    parts += ["--split", options.split, "--test", options.test, "--correction", options.correction]
    return " ".join(parts)


def write_sweep_report(sweep_dir: Path, options: Options) -> tuple[str, dict[str, Path], Comparison]:
    """The comparison of the sweep's finished jobs, written into `<sweep dir>/compare/`: (markdown, files, result)."""
    from lmrec.compare.analysis import compare_runs
    from lmrec.compare.report import to_markdown, write_report
    from lmrec.compare.runs import find_runs

    comparison = compare_runs(find_runs([sweep_dir]), options)
    written = write_report(comparison, Path(sweep_dir) / REPORT_DIR)
    return to_markdown(comparison), written, comparison


class CompareReport(Callback):
    """Hydra callback: at the end of a multirun whose config has a `compare` node, the significance report."""

    def __init__(self, wandb_project: str | None = "lmrec") -> None:
        self.wandb_project = wandb_project

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns an exception of a callback into a warning and runs the sweep anyway: a mistyped node must
        # stop it before the first job instead, as one line and exit code 2 like every lmrec input error.
        with report_input_errors():
            requested_options(config)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        # Hydra's sweepers raise the first failed job's error after its batch, so `on_multirun_end` never runs:
        # say so while the sweep goes on, with the command that makes the report of the jobs that finished.
        if config.hydra.mode != RunMode.MULTIRUN or process_rank() != 0:
            return
        if getattr(job_return, "status", None) == JobStatus.FAILED and (options := requested_options(config)):
            retry = rerun_command(Path(str(config.hydra.sweep.dir)), options)
            log.warning("a job failed: this sweep will end without its comparison report; once it is over: %s", retry)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if process_rank() != 0 or (options := requested_options(config)) is None:
            return
        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            markdown, written, comparison = write_sweep_report(sweep_dir, options)
        except InputError as err:  # the jobs' results stand; say why there is no report and how to retry
            retry = rerun_command(sweep_dir, options)
            log.error("no comparison report: %s: %s (retry: %s)", type(err).__name__, err, retry)
            return
        print(f"{markdown}\nreport written to {written['markdown'].parent}")
        if self.wandb_project:
            try:
                group = wandb_group_of(sweep_dir)
                log_report_to_wandb(comparison, written, self.wandb_project, group, sweep_dir)
            except Exception as err:  # the report on disk is the result; a W&B hiccup must not hide it
                log.warning("could not log the comparison report to W&B: %s", err)
