"""The data card: what a run was trained and tested on, as markdown for a reader and JSON for a script.

It holds the dataset's figures (data/stats.py) and the protocol options that produced them (filters, split,
source options, cache key), so two results can be compared on the data alone: same card, same data.
`lmrec-train` writes it into every run folder and logs it to W&B (summary values and a `data_card` artifact);
`lmrec-data stats --card DIR` writes the same files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import Logger, WandbLogger

from lmrec.atomic import atomic_path, write_json_atomic

log = logging.getLogger(__name__)

CARD_JSON = "data_card.json"
CARD_MARKDOWN = "data_card.md"


def make_card(figures: dict[str, Any], protocol: dict[str, Any]) -> dict[str, Any]:
    return {"figures": figures, "protocol": protocol}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e-3 or value != int(value) else f"{int(value):,}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def summary_rows(card: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows shared by the markdown card and the `lmrec-data stats` table."""
    fig = card["figures"]
    rows = [(k, _number(fig[k])) for k in ("users", "items", "interactions", "density")]
    for key in ("interactions_per_user", "interactions_per_item", "text_length"):
        label = f"text length, {fig['text_length_unit']}" if key == "text_length" else key.replace("_", " ")
        dist = fig[key]
        rows.append((label, ", ".join(f"{name} {_number(value)}" for name, value in dist.items())))
    if "text_truncated_share" in fig:
        rows.append(("texts over the encoder's max_length", f"{100 * fig['text_truncated_share']:.2f} %"))
    rows.append(("items without text", f"{100 * fig['items_without_text_share']:.2f} %"))
    rows.append(("items without interactions", _number(fig["items_without_interactions"])))
    for name, split in fig["splits"].items():
        rows.append(
            (
                f"{name} split",
                f"{split['interactions']:,} interactions, {split['users']:,} users ({split['cold_users']:,} cold), "
                f"{split['items']:,} items ({split['cold_items']:,} cold)",
            )
        )
    for step in fig["filters"]:
        detail = f" ({step['detail']})" if step.get("detail") else ""
        rows.append(
            (
                f"filter {step['name']}{detail}",
                f"removed {step['rows']:,} interactions, {step['users']:,} users, {step['items']:,} items",
            )
        )
    for file, reasons in fig["dropped_rows"].items():
        rows.append((f"dropped rows of {file}", ", ".join(f"{n} {reason}" for reason, n in reasons.items())))
    return rows


def render_markdown(card: dict[str, Any]) -> str:
    lines = ["# Data card", "", "| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in summary_rows(card)]
    lines += ["", "## Protocol", "", "```json", json.dumps(card["protocol"], indent=2, default=str), "```", ""]
    return "\n".join(lines)


def write_card(folder: Path, card: dict[str, Any]) -> dict[str, Path]:
    """data_card.json and data_card.md in `folder`, each written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / CARD_JSON, json.loads(json.dumps(card, default=str)))
    with atomic_path(folder / CARD_MARKDOWN) as tmp:
        tmp.write_text(render_markdown(card))
    return {"json": folder / CARD_JSON, "markdown": folder / CARD_MARKDOWN}


def scalar_summary(card: dict[str, Any]) -> dict[str, float]:
    """The card's headline numbers as flat `data/...` keys for a W&B summary (tables compare runs on them)."""
    fig = card["figures"]
    out: dict[str, float] = {f"data/{k}": fig[k] for k in ("users", "items", "interactions", "density")}
    out["data/items_without_text_share"] = fig["items_without_text_share"]
    out["data/text_length_median"] = fig["text_length"]["median"]
    for name, split in fig["splits"].items():
        out |= {f"data/{name}/{k}": v for k, v in split.items()}
    return out


def log_card(loggers: list[Logger], paths: dict[str, Path], card: dict[str, Any]) -> None:
    """Put the card into each W&B run: its headline numbers in the summary, both files as an artifact."""
    for logger in (lg for lg in loggers if isinstance(lg, WandbLogger)):
        import wandb

        run = logger.experiment
        run.summary.update(scalar_summary(card))
        artifact = wandb.Artifact(f"data-card-{run.id}", type="data_card", metadata={"cache_key": card_key(card)})
        for path in paths.values():
            artifact.add_file(str(path))
        run.log_artifact(artifact)


def card_key(card: dict[str, Any]) -> str:
    return str(card["figures"].get("cache_key", ""))


def publish_card(folder: Path, card: dict[str, Any], loggers: list[Logger] | None = None) -> dict[str, Path]:
    """Write the card into a run folder and log it to the run's W&B loggers."""
    paths = write_card(folder, card)
    log_card(list(loggers or []), paths, card)
    log.info("data card written to %s", paths["markdown"])
    return paths
