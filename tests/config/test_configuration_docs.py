"""docs/configuration.md lists every option of every config group in conf/, and no option that is gone."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

CONF = REPO_ROOT / "conf"
DOC = REPO_ROOT / "docs" / "configuration.md"
#: Choices the doc names that are not files of ours: Hydra's own launcher, and "no scheduler".
NOT_FILES = {("hydra/launcher", "basic"), ("model/scheduler", "none")}


def shipped_options() -> set[tuple[str, str]]:
    """(group, option) for every yaml a user can choose: not an internal `_*` file, not Hydra's own settings."""
    found = set()
    for path in CONF.rglob("*.yaml"):
        group = str(path.parent.relative_to(CONF))
        if group != "." and group != "hydra" and not path.name.startswith("_"):
            found.add((group, path.stem))
    return found


def documented_options() -> set[tuple[str, str]]:
    """(group, option) for each backticked name in the options column of the doc's "Config groups" table."""
    table = DOC.read_text().split("## Config groups", 1)[1].split("\n## ", 1)[0]
    found = set()
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"`[\w/]+`", cells[0]):
            options = re.sub(r"\([^)]*\)", "", cells[1])  # parenthesised remarks hold links and notes, not options
            found |= {(cells[0].strip("`"), name) for name in re.findall(r"`(\w+)`", options)}
    return found


def test_every_config_group_option_is_documented():
    missing = sorted(shipped_options() - documented_options())
    assert missing == [], f"add these to the 'Config groups' table of docs/configuration.md: {missing}"


def test_the_doc_lists_no_option_that_is_gone():
    stale = sorted(documented_options() - shipped_options() - NOT_FILES)
    assert stale == [], f"docs/configuration.md lists options conf/ no longer has: {stale}"
