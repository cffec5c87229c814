"""`lmrec-data stats data=<name> [overrides]`: what a dataset looks like under a protocol, before training on it.

The overrides are lmrec-train's (the same composed config), so `lmrec-data stats data=movielens_small
data.split.strategy=cold_items data.kcore.user=5` shows exactly the data that `lmrec-train` with those overrides
would train on, read from the same processed cache. Text lengths are counted in tokens of the configured encoder
(`model.encoder.name_or_path`; the packaged MiniLM needs no network), in words when the config names none or the
encoder cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from lmrec.cli.components import build_data
from lmrec.config.compose import compose_config
from lmrec.data.card import publish_card, summary_rows
from lmrec.data.datamodule import RecDataModule
from lmrec.data.stats import TokenCounter
from lmrec.encoders.resolve import canonical_name, encoder_files
from lmrec.errors import InputError, report_input_errors
from lmrec.runtime.console import protect_console

log = logging.getLogger(__name__)


def token_counter(cfg: DictConfig) -> tuple[TokenCounter | None, str | None, int | None]:
    """(count, tokenizer name, max_length) for the configured encoder; (None, None, None) -> count words."""
    encoder = cfg.get("model", {}).get("encoder") if cfg.get("model") else None
    if not encoder or not encoder.get("name_or_path"):
        return None, None, None
    try:
        from lmrec.encoders.loading import load_tokenizer  # imported late: transformers start-up is slow

        tokenizer = load_tokenizer(encoder_files(encoder))  # a GGUF file carries its tokenizer
    except (InputError, OSError, ValueError) as err:  # a missing tokenizer costs the unit, not the statistics
        log.warning("text lengths in words: the encoder's tokenizer could not be loaded (%s)", err)
        return None, None, None
    tokenizer.model_max_length = sys.maxsize  # count every token; truncation is what we want to measure

    def count(texts: Sequence[str]) -> np.ndarray:
        ids = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))

    max_length = encoder.get("max_length")
    return count, canonical_name(str(encoder.name_or_path)), int(max_length) if max_length else None


def data_card(cfg: DictConfig, datamodule: RecDataModule) -> dict:
    """The data card of `cfg`'s data, with text lengths under its encoder's tokenizer."""
    return datamodule.data_card(*token_counter(cfg))


def print_table(card: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    table.add_column("figure", style="bold")
    table.add_column("value")
    for name, value in summary_rows(card):
        table.add_row(name, value)
    Console().print(table)


def stats(overrides: Sequence[str], card_dir: Path | None, as_json: bool) -> int:
    cfg = compose_config("train", overrides)
    _, datamodule = build_data(cfg)
    card = data_card(cfg, datamodule)
    if card_dir is not None:
        publish_card(card_dir, card)
    if as_json:
        print(json.dumps(card, indent=2, default=str))
    else:
        protocol = card["protocol"]
        ratios = f" {protocol['ratios']}" if protocol["split"] in RATIO_SPLITS else ""  # the others ignore them
        print_table(card, f"{datamodule.source.name} - split {protocol['split']}{ratios}")
    return 0


#: Split strategies that read `data.split.ratios` (leave-one-out and a shipped split do not).
RATIO_SPLITS = ("random", "user_random", "temporal", "cold_items", "cold_users")


def main(argv: Sequence[str] | None = None) -> int:
    """Dataset statistics under a protocol (exit code 2 on a config or data error)."""
    parser = argparse.ArgumentParser(prog="lmrec-data", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    stats_parser = commands.add_parser("stats", help="users, items, activity, text lengths, cold entities per split")
    stats_parser.add_argument("overrides", nargs="*", help="lmrec-train config overrides, e.g. data=movielens_100k")
    stats_parser.add_argument("--card", type=Path, default=None, help="also write data_card.md/.json to this folder")
    stats_parser.add_argument("--json", action="store_true", help="print the card as JSON instead of a table")
    args = parser.parse_args(argv)
    protect_console(args.overrides)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with report_input_errors(exit_process=False):  # logs the one line; the exit code is returned
            return stats(args.overrides, args.card, args.json)
    except InputError:
        return 2
    except (HydraException, OmegaConfBaseException) as err:  # a misspelt override: one line, like lmrec-train
        logging.getLogger("lmrec").error("%s: %s", type(err).__name__, err)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
