"""A study's results: one `lmrec-compare` report per cell (dataset x setting), the arms against the baseline arm,
and `study.md` / `study.json` gathering every choice (each candidate's validation value) and every report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmrec.atomic import atomic_path
from lmrec.errors import InputError
from lmrec.study.spec import StudySpec


def baseline_label(folders: list[Path], baseline_folders: list[Path]) -> str:
    """The label lmrec-compare gives the configuration whose runs are the baseline arm's."""
    from lmrec.compare.runs import find_runs, group_configurations

    wanted = {Path(f).resolve() for f in baseline_folders}
    for configuration in group_configurations(find_runs(folders)):
        if {run.folder.resolve() for run in configuration.runs.values()} <= wanted:
            return configuration.label
    raise InputError("the baseline arm's runs form no configuration of their own")


def compare_cell(spec: StudySpec, cell: dict[str, Any], out: Path) -> tuple[Path | None, str | None]:
    """(the report's markdown file, None) or (None, why there is no report)."""
    from lmrec.compare.api import report

    arms = {arm: [Path(f) for f in entry["runs"]] for arm, entry in cell.items() if entry["runs"]}
    if spec.baseline is not None and spec.baseline not in arms:
        return None, f"the baseline arm {spec.baseline!r} has no finished run"
    if len(arms) < 2:
        return None, "fewer than two arms finished"
    folders = [f for runs in arms.values() for f in runs]
    try:
        options = dict(spec.compare)
        if spec.baseline is not None:
            options["baseline"] = baseline_label(folders, arms[spec.baseline])
        written = report(folders, out=out, **options)
    except InputError as err:
        return None, str(err)
    return written["markdown"], None


def write_study(spec: StudySpec, results: dict[str, Any], failed: dict[str, str], out: Path) -> Path:
    """Compare every cell, then write study.md and study.json; returns study.md."""
    against = f"baseline arm `{spec.baseline}`." if spec.baseline else "every pair of arms compared."
    lines = [
        "# Study",
        "",
        f"Seeds {', '.join(map(str, spec.seeds))}; {spec.budget} configurations tried per arm on the validation split "
        f"of each dataset and setting (the first seed), the best then run on every seed and tested; {against}",
        "",
    ]
    lines += ["| arm | overrides | searched |", "|---|---|---|"]
    for arm in spec.arms.values():
        searched = ", ".join(f"`{key}` {list(values)}" for key, values in arm.search.items()) or "–"
        lines.append(f"| {arm.name} | `{' '.join(arm.overrides)}` | {searched} |")
    lines.append("")
    summary: dict[str, Any] = {"cells": {}, "failed": failed}
    for name, cell in results.items():
        markdown, why = compare_cell(spec, cell, out / "report" / name)
        summary["cells"][name] = {"arms": cell, "report": str(markdown) if markdown else None, "no_report": why}
        lines += [f"## {name}", "", "### Tuning on validation", "", "| arm | candidate | validation | chosen |",
                  "|---|---|---|---|"]  # fmt: skip
        for arm, entry in cell.items():
            rows = entry["tuning"] or [{"overrides": entry["candidate"], "val": None, "chosen": True}]
            for row in rows:
                value = f"{row['val']:.4f}" if isinstance(row["val"], float) else "–"
                shown = " ".join(row["overrides"]) or "(as given)"
                lines.append(f"| {arm} | `{shown}` | {value} | {'✓' if row['chosen'] else ''} |")
        lines.append("")
        if markdown is not None:
            body = markdown.read_text().split("\n", 1)[1].replace("\n## ", "\n### ")
            lines += [f"### Test (report: `report/{name}/`)", body.strip(), ""]
        else:
            lines += [f"No comparison: {why}.", ""]
    if failed:
        lines += ["## Runs that failed", "", *(f"- `{job}`: {why}" for job, why in failed.items()), ""]
    study_md = out / "study.md"
    with atomic_path(study_md) as tmp:
        tmp.write_text("\n".join(lines))
    with atomic_path(out / "study.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str))
    return study_md
