"""The tables of docs/benchmarks.md, generated from the committed records between marker comments.

    <!-- bench:NAME -->
    (generated: the table of every committed full-run record of NAME, and where each record came from)
    <!-- /bench:NAME -->

Figures typed by hand drift from the runs that produced them; generated tables cannot. `lmrec-bench tables`
rewrites every block, `lmrec-bench tables --check` fails when a block differs from what the records give (the
test suite runs it on the committed docs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

BLOCK = re.compile(r"(<!-- bench:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.S)

Renderer = Callable[[list[dict]], str]


def cell(value: Any, spec: str = ".3f") -> str:
    """One table cell: None -> '—', ints with thousands separators, floats by `spec` (e.g. '.1f', ',.0f', '.2e')."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and not spec.endswith(("e", "%")):
        return f"{value:,}"
    if isinstance(value, int | float):
        return format(value, spec)
    return str(value)


def ratio(value: Any, spec: str = ".2f") -> str:
    """A ratio cell ('1.23×'): the reading of most comparisons on the page."""
    return "—" if value is None else f"{value:{spec}}×"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A markdown table; `align` has one letter per column: l (left) or r (right, for numbers; the default after
    the first column)."""
    header = list(header)
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def run_cell(record: Mapping[str, Any]) -> str:
    """Which run a row comes from: date, commit (and label, e.g. a condition or a shape)."""
    date = str(record.get("date") or "")[:10] or "undated"
    commit = (record.get("git") or {}).get("commit")
    text = f"{date} `{commit}`" if commit else date
    return f"{text}, {record['label']}" if record.get("label") else text


def get(record: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """A nested value by dotted path ('figures.cold.wall_s'); `default` where any part is missing."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return default
    return value


def provenance(records: Sequence[Mapping[str, Any]]) -> str:
    """Where the records came from: file, and for transcriptions the run they were transcribed from."""
    parts = []
    for record in records:
        where = f"[`{record['_file']}`](results/{record['_file']})"
        if record.get("transcribed"):
            where += f" ({record['transcribed']})"
        parts.append(where)
    return "Records: " + "; ".join(parts) + "." if parts else ""


def render_block(name: str, records: list[dict], renderers: Mapping[str, Renderer]) -> str:
    """The generated content of one block: the table, then the records' provenance."""
    mine = [r for r in records if r.get("benchmark") == name]
    if not mine:
        return f"No full run recorded yet: `lmrec-bench run {name}` writes `docs/results/{name}.json`.\n"
    if name not in renderers:
        raise KeyError(f"no table renderer for {name!r}")
    return f"{renderers[name](mine).rstrip()}\n\n{provenance(mine)}\n"


def regenerate(text: str, records: list[dict], renderers: Mapping[str, Renderer]) -> str:
    """`text` with every marked block replaced by what the records give."""

    def replace(match: re.Match) -> str:
        """One block's new content."""
        body = render_block(match["name"], records, renderers)
        return f"{match.group(1)}{body}{match.group(4)}"

    return BLOCK.sub(replace, text)


def block_names(text: str) -> list[str]:
    """The names of the marked blocks of a page, in order."""
    return [match["name"] for match in BLOCK.finditer(text)]


def update_doc(doc: Path, records: list[dict], renderers: Mapping[str, Renderer], check: bool) -> list[str]:
    """Regenerate `doc` in place (or, with `check`, only compare); the names of the blocks that were (or would
    be) changed."""
    text = doc.read_text()
    new = regenerate(text, records, renderers)
    old_blocks = {m["name"]: m["body"] for m in BLOCK.finditer(text)}
    changed = [m["name"] for m in BLOCK.finditer(new) if old_blocks.get(m["name"]) != m["body"]]
    if not check and new != text:
        doc.write_text(new)
    return changed
