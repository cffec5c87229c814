"""Trained runs of every model family on a slice of the bundled data, shared by the serving tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lmrec.cli.train import train
from tests.helpers import compose_train

#: One run per model family the serving layer treats differently.
FAMILIES = {
    "ease": ["model=ease"],
    "itemknn": ["model=itemknn"],
    "pop": ["model=pop"],
    "als": ["model=als", "model.baseline.iterations=3"],
    "history": ["model/item_tower=id", "model/user_tower=history"],
    "mf": ["model/item_tower=id"],
    "sequence": ["experiment=sasrec"],
    "text": ["model/user_tower=history", "model.encoder.name_or_path={tiny_bert}"],
}


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> dict[str, Path]:
    """{family: run folder}, each trained for one epoch on 30 users, as `lmrec-train` leaves it (with .hydra/)."""
    root = tmp_path_factory.mktemp("serving-runs")
    runs = {}
    for family, overrides in FAMILIES.items():
        out = root / family
        chosen = [o.format(tiny_bert=tiny_bert_dir) for o in overrides]
        task = [] if family == "sequence" else ["task=ranking"]
        cfg = compose_train(
            [*task, *chosen, "data.max_users=30", "trainer.max_epochs=1", "per_user=false", "logger=csv", "seed=0"],
            out,
            root / "cache",
        )
        (out / ".hydra").mkdir(parents=True)
        OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
        train(cfg, out)
        runs[family] = out
    return runs
