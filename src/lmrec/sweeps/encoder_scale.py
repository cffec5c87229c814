"""The encoder-scale table: does a bigger language model make the recommender better, and what does it cost?

One row per job of `experiment=encoder_scale` (the same tower, head, task and split; only the encoder varies):
the test metric, the encoder's parameters and output width, what encoding the catalogue cost (seconds, texts/s,
peak memory; kept in the embedding cache entry, so a cache hit still reports the cost of building it), and a plot
of the metric against encoder size. Written by the one comparison callback (`comparison.kind: encoder_scale`,
`lmrec.sweeps.comparison`) from the job folders, like every lmrec sweep table: this module says only what it shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmrec.atomic import atomic_path

#: The comparison table's identity and quality columns, then the encoder's size and what encoding cost.
COLUMNS = (
    "job",
    "label",
    "status",
    "metric",
    "value",
    "encoder_params",
    "width",
    "encode_seconds",
    "texts_per_second",
    "encode_peak_memory_mb",
    "cache_hit",
    "seconds_per_epoch",
)
#: The encoder's size and encoding cost as run.json records them: column -> dotted path in the file.
FACTS = {
    "encoder_params": "params.encoder_frozen",
    "width": "encoding.width",
    "encode_seconds": "encoding.encode_seconds",
    "texts_per_second": "encoding.texts_per_second",
    "encode_peak_memory_mb": "encoding.encode_peak_memory_mb",
    "cache_hit": "encoding.cache_hit",
}


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
