"""The README and docs/ stay navigable: a short README that holds the quickstart CI runs, an index of every page,
and no link to a file or a section that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
INDEX = DOCS / "index.md"
CI = REPO_ROOT / ".ci" / "run"
README_MAX_LINES = 150

#: `[text](target)` and `![alt](target)`; the target ends at the first space (a title may follow) or `)`.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def pages() -> list[Path]:
    """README.md and every markdown page of docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans, where markdown links and headings live."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(re.sub(r"`[^`\n]*`", "", line))
    return "\n".join(kept)


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def relative_links(path: Path) -> list[str]:
    """Links to files of the repository (not to web pages or e-mail addresses)."""
    return [target for target in links(path) if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower-cased, links reduced to their text, punctuation but `-` and `_`
    removed, each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a page's headings (a repeated heading gets `-1`, `-2`, ... as on GitHub)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def test_the_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}); move detail to docs/"


def test_the_readme_holds_both_quickstart_commands_as_ci_runs_them():
    """CI runs the README's test command verbatim; the install command is the same line with the runtime install."""
    commands = [line.strip() for line in CI.read_text().splitlines() if line.strip().startswith("python3 -m venv")]
    assert len(commands) == 1, f".ci/run should run one quickstart command, found {commands}"
    test_command = commands[0]
    setup, separator, _ = test_command.partition(" && pip install -e ")
    assert separator, f"the test command in .ci/run does not install lmrec with pip install -e: {test_command}"
    install_command = f"{setup} && pip install -e . && lmrec-train"
    readme_lines = README.read_text().splitlines()
    assert test_command in readme_lines, f"README.md must hold the line CI runs, unchanged: {test_command}"
    assert install_command in readme_lines, f"README.md must hold the install command: {install_command}"


def test_the_index_links_every_page_and_nothing_else():
    linked = {(INDEX.parent / target.split("#", 1)[0]).resolve() for target in relative_links(INDEX)}
    pages_linked = {path for path in linked if path.suffix == ".md" and path.parent == DOCS.resolve()}
    every_page = {path.resolve() for path in DOCS.glob("*.md")} - {INDEX.resolve()}
    assert sorted(p.name for p in every_page - pages_linked) == [], "docs/index.md does not list these pages"
    assert sorted(p.name for p in pages_linked - every_page) == [], "docs/index.md lists pages that do not exist"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_points_to_a_file_and_section_that_exist(page: Path):
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor.lower() not in anchors(destination):
            broken.append(f"{target} (no heading with that anchor in {destination.name})")
    assert broken == [], f"{page.relative_to(REPO_ROOT)} has broken links: {broken}"


def test_the_link_and_anchor_helpers_see_what_github_sees(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## 4. A model: `model=ease_text`\n\n## Notes\n\n## Notes\n\n```\n# not a heading\n"
        "[not](a-link.md)\n```\n\nSee [a](other.md#x), ![b](img.png), `[c](code.md)` and [d](https://e.org).\n"
    )
    assert anchors(page) == {"title", "4-a-model-modelease_text", "notes", "notes-1"}
    assert links(page) == ["other.md#x", "img.png", "https://e.org"]
    assert relative_links(page) == ["other.md#x", "img.png"]
