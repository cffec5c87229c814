"""`lmrec-train --help`: the groups a run is composed from, with their options and without internal files."""

from __future__ import annotations

from lmrec.config.help import format_groups
from tests.helpers import run_cli


def test_the_listing_hides_internal_files_and_hydras_groups():
    tree = {"": ["data", "hydra", "model"], "data": [], "hydra": ["launcher"], "model": ["tuning"], "model/tuning": []}
    options = {"data": ["_common", "small"], "hydra": ["default"], "model": ["default"]}
    options["model/tuning"] = ["_tuned", "lora"]
    listing = format_groups(lambda parent: tree.get(parent, []), lambda group: options.get(group, []))
    assert listing.splitlines() == ["data: small", "model: default", "model/tuning: lora"]


def test_help_lists_every_choice_and_no_internal_file(tmp_path):
    out = run_cli("lmrec-train", ["--help"], home=tmp_path).stdout
    assert out.startswith("lmrec-train: every option is documented in docs/configuration.md")
    groups = dict(line.split(": ", 1) for line in out.split("== Config ==")[0].splitlines() if ": " in line[:30])
    assert groups["model/tuning"].split(", ")[:3] == ["adalora", "adapter", "frozen"]
    assert groups["trainer"] == "ddp, ddp_sim, ddp_slurm, default, gpu"
    assert "_" not in "".join(option[0] for options in groups.values() for option in options.split(", "))
    assert "run_name: ${task.name}-${model.name}" in out  # the composed config follows, as Hydra prints it
