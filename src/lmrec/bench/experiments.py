"""Tables of experiment results that are `lmrec-train` runs, not registry benchmarks, for docs/benchmarks.md.

Some figures on the benchmarks page come from training runs and sweeps (item towers side by side, tuning quality,
encoder scale, a GPU check, the retired MostPop script). They are committed as records too (`benchmark` names the
experiment, `figures.rows` one dict of numbers per row, `facts.rows` the matching labels), so every table on the
page is generated from JSON by `lmrec-bench tables`; the column layout of each lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lmrec.bench import tables

#: A column: (key in the row's figures, or "label" for the row's label; header; format spec).
Column = tuple[str, str, str]


def with_spread(key: str) -> Callable[[dict, dict], str]:
    """'mean ± std' cells from the row's `<key>` and `<key>_std` figures."""

    def cell(row: dict, _: dict) -> str:
        """The cell of one row."""
        if row.get(key) is None:
            return ""
        return f"{row[key]:.4f} ± {row[f'{key}_std']:.4f}"

    return cell


def rows_table(columns: Sequence[Column], align: str | None = None) -> Callable[[list[dict]], str]:
    """A renderer: one table row per entry of each record's `figures.rows`, labelled by `facts.rows`."""

    def render(records: list[dict]) -> str:
        """The table of every record's rows."""
        out = []
        for record in records:
            labels = tables.get(record, "facts.rows", [])
            for i, row in enumerate(tables.get(record, "figures.rows", [])):
                cells = [tables.run_cell(record) if i == 0 else ""]
                for key, _, spec in columns:
                    if key == "label":
                        cells.append(labels[i] if i < len(labels) else "")
                    elif spec == "±":
                        cells.append(with_spread(key)(row, record))
                    else:
                        cells.append("" if row.get(key) is None else tables.cell(row[key], spec))
                out.append(cells)
        return tables.table(["run", *(header for _, header, _ in columns)], out, align)

    return render


EXPERIMENT_TABLES: dict[str, Callable[[list[dict]], str]] = {
    "mostpop": rows_table(
        [
            ("label", "metric", ""),
            ("mostpop", "MostPop", ".4f"),
            ("lmrec", "lmrec (ranking, BPR)", ".4f"),
            ("ratio", "lmrec / MostPop", ".2f"),
        ],
        "llrrr",
    ),
    "towers": rows_table(
        [
            ("label", "item tower, task", ""),
            ("rmse", "test RMSE ↓", "±"),
            ("mae", "test MAE ↓", "±"),
            ("auc", "test AUC ↑", "±"),
            ("ndcg@10", "test NDCG@10 ↑", "±"),
            ("recall@10", "test Recall@10 ↑", "±"),
            ("params", "trainable params", ",d"),
        ],
        "llrrrrrr",
    ),
    "towers_by_seed": rows_table(
        [
            ("label", "seed", ""),
            ("rmse_id", "rating RMSE id", ".4f"),
            ("rmse_text", "text", ".4f"),
            ("rmse_hybrid", "hybrid", ".4f"),
            ("ndcg_id", "ranking NDCG@10 id", ".4f"),
            ("ndcg_text", "text", ".4f"),
            ("ndcg_hybrid", "hybrid", ".4f"),
        ],
        "llrrrrrr",
    ),
    "gpu_check": rows_table(
        [
            ("label", "run (overrides)", ""),
            ("wall_s", "wall s", ".1f"),
            ("peak_rss_mb", "peak RSS MB", ",.0f"),
            ("rmse", "test RMSE", ".4f"),
            ("ndcg@10", "test NDCG@10", ".4f"),
        ],
        "llrrrr",
    ),
    "tuning_quality": rows_table(
        [
            ("label", "protocol", ""),
            ("ndcg@10", "test NDCG@10", ".4f"),
            ("best_val_ndcg@10", "best val NDCG@10", ".4f"),
        ],
        "llrr",
    ),
    "tuning_equal_time": rows_table(
        [
            ("label", "mode", ""),
            ("trainable", "trainable parameters", ",d"),
            ("trainable_pct", "% trainable", "g"),
            ("ndcg@10", "test NDCG@10", ".4f"),
            ("recall@10", "test Recall@10", ".4f"),
            ("best_val_ndcg@10", "best val NDCG@10", ".4f"),
            ("steps", "optimizer steps in 8 min", ",d"),
            ("s_per_step", "s / step", "g"),
            ("peak_rss_mb", "peak RSS MB", ",.0f"),
        ],
        "llrrrrrrrr",
    ),
    "encoder_scale": rows_table(
        [
            ("label", "encoder", ""),
            ("params_m", "parameters (M)", ".1f"),
            ("width", "width", "d"),
            ("ndcg@10", "test NDCG@10", ".4f"),
            ("encode_s", "encode s (9,742 texts, load incl.)", ".1f"),
            ("texts_per_s", "texts/s", ".1f"),
            ("peak_rss_gb", "encode peak RSS GB", ".2f"),
        ],
        "llrrrrrr",
    ),
    "smollm2_dtype": rows_table(
        [
            ("label", "dtype, batch", ""),
            ("texts_per_s_384", "texts/s (first 384 texts)", ".1f"),
            ("catalogue_s", "whole catalogue s (load incl.)", ".1f"),
            ("peak_rss_gb", "peak RSS GB", ".2f"),
            ("ndcg@10", "test NDCG@10", ".4f"),
        ],
        "llrrrr",
    ),
    "contention": rows_table(
        [
            ("label", "condition", ""),
            ("cached_s_per_batch", "cached mean s/batch", ".4f"),
            ("naive_s_per_batch", "naive s/batch", ".2f"),
        ],
        "llrr",
    ),
}
