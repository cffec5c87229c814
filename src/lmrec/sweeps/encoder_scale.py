"""The encoder-scale table: does a bigger language model make the recommender better, and what does it cost?

One row per job of `experiment=encoder_scale` (the same tower, head, task and split; only the encoder varies):
the test metric, the encoder's parameters and output width, what encoding the catalogue cost (seconds, texts/s,
peak memory; kept in the embedding cache entry, so a cache hit still reports the cost of building it), and a plot
of the metric against encoder size. Built from the job folders, like every lmrec sweep table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lmrec.atomic import atomic_path
from lmrec.runs.folder import read_run_info
from lmrec.runtime.distributed import process_rank
from lmrec.sweeps import comparison
from lmrec.sweeps.comparison import (
    ComparisonTable,
    comparison_rows,
    log_to_wandb,
    markdown_table,
    wandb_group_of,
    write_comparison,
)

log = logging.getLogger(__name__)

#: The comparison table's identity and quality columns, then the encoder's size and what encoding cost.
COLUMNS = (
    *comparison.COLUMNS[: comparison.COLUMNS.index("value") + 1],
    "encoder_params",
    "width",
    "encode_seconds",
    "texts_per_second",
    "encode_peak_memory_mb",
    "cache_hit",
    "seconds_per_epoch",
)


def scale_rows(sweep_dir: Path, label_key: str, known: dict[Path, str] | None = None) -> list[dict[str, Any]]:
    """The comparison rows plus each job's encoder size and encoding cost (from its run.json)."""
    rows = comparison_rows(sweep_dir, label_key, known)
    for row in rows:
        info = read_run_info(Path(sweep_dir) / row["job"]) or {}
        encoding = info.get("encoding") or {}
        params = info.get("params") or {}
        row.update(
            encoder_params=params.get("encoder_frozen"),
            width=encoding.get("width"),
            encode_seconds=encoding.get("encode_seconds"),
            texts_per_second=encoding.get("texts_per_second"),
            encode_peak_memory_mb=encoding.get("encode_peak_memory_mb"),
            cache_hit=encoding.get("cache_hit"),
        )
    return rows


def plot_scale(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Test metric against encoder parameters (log scale), one labelled point per encoder; None without data."""
    points = [r for r in rows if r.get("value") is not None and r.get("encoder_params")]
    if not points:
        return None
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")  # files only: a sweep runs without a display
    import matplotlib.pyplot as plt

    points.sort(key=lambda r: r["encoder_params"])
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot([r["encoder_params"] for r in points], [r["value"] for r in points], marker="o")
    for r in points:  # the model's own name, without the hub organisation
        name = str(r["label"]).rsplit("/", 1)[-1]
        axes.annotate(name, (r["encoder_params"], r["value"]), textcoords="offset points", xytext=(0, 6), ha="center")
    axes.set_xscale("log")
    millions = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:g}M")
    axes.xaxis.set_major_formatter(millions)
    axes.xaxis.set_minor_formatter(millions)
    axes.margins(x=0.15, y=0.15)
    axes.set_xlabel("encoder parameters")
    axes.set_ylabel(str(points[0]["metric"]))
    axes.set_title("Recommendation quality against encoder size")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path


class EncoderScaleTable(ComparisonTable):
    """Hydra callback: `<sweep>/<name>.{csv,md,png}` after every job and at the end, and the table on W&B."""

    def __init__(self, label: str = "model.encoder.name_or_path", name: str = "encoder_scale", **kwargs: Any) -> None:
        super().__init__(label=label, name=name, **kwargs)

    def _write(self, sweep_dir: Path, known: dict[Path, str] | None = None) -> tuple[list[dict[str, Any]], Path | None]:
        rows = scale_rows(sweep_dir, self.label, known)
        write_comparison(sweep_dir, rows, self.name, COLUMNS)
        return rows, plot_scale(rows, sweep_dir / f"{self.name}.png")

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if process_rank() == 0:
            self._write(
                Path(config.hydra.sweep.dir), {Path(str(config.hydra.runtime.output_dir)): job_return.status.name}
            )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows, plot = self._write(sweep_dir)
        print(f"{self.name} ({len(rows)} jobs), also in {sweep_dir / self.name}.csv:\n{markdown_table(rows, COLUMNS)}")
        if self.wandb_project:
            try:
                images = {f"{self.name}_plot": plot} if plot else None
                log_to_wandb(rows, self.name, self.wandb_project, wandb_group_of(sweep_dir), sweep_dir, COLUMNS, images)
            except Exception as err:  # the table on disk is the result; a W&B hiccup must not hide it
                log.warning("could not log %s to W&B: %s", self.name, err)
