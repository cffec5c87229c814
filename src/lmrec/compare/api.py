"""The Python entry point of `lmrec.compare`: `compare(paths, **options)` reads run or sweep folders and returns
the computed `Comparison`; `report(...)` also writes it. The CLI (`lmrec-compare`) and the sweep callback (a
`compare` node) go through `make_options`, so an option is spelled and checked the same way everywhere.

    from lmrec.compare.api import compare
    from lmrec.compare.report import to_markdown
    result = compare(["outputs/multiruns/2026-12-07/10-00-00"], baseline="item_tower=id", test="t")
    print(to_markdown(result))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from lmrec.compare.analysis import Comparison, Options, compare_runs
from lmrec.compare.multiple import METHODS
from lmrec.compare.runs import find_runs
from lmrec.errors import ConfigError

#: The options a comparison takes, with their defaults (`lmrec.compare.analysis.Options`).
OPTION_NAMES = tuple(f.name for f in fields(Options))
SPLITS = ("test", "val")


def make_options(values: Mapping[str, Any] | None = None, where: str = "", **more: Any) -> Options:
    """Checked `Options` from names and values (`where`: the prefix an error names, e.g. `compare.`): an unknown
    name, test, correction or split, or an alpha outside (0, 1), is one line naming what is accepted."""
    given = {**(values or {}), **more}
    unknown = sorted(str(k) for k in given if k not in OPTION_NAMES)
    if unknown:
        raise ConfigError(f"{where}{unknown[0]}: not an option of the comparison ({', '.join(OPTION_NAMES)})")
    given = {k: v for k, v in given.items() if v is not None or k == "baseline"}
    metrics = given.get("metrics", ())
    given["metrics"] = [metrics] if isinstance(metrics, str) else [str(m) for m in metrics]
    if given.get("baseline") is not None:
        given["baseline"] = str(given["baseline"])
    if str(given.get("correction", "holm")) not in METHODS:
        raise ConfigError(f"{where}correction={given['correction']!r}; expected one of {', '.join(METHODS)}")
    if str(given.get("split", "test")) not in SPLITS:
        raise ConfigError(f"{where}split={given['split']!r}; expected one of {', '.join(SPLITS)}")
    for name in ("permutations", "resamples", "seed"):
        if name in given and (isinstance(given[name], bool) or not isinstance(given[name], int) or given[name] < 0):
            raise ConfigError(f"{where}{name}={given[name]!r}; expected a whole number ≥ 0")
    options = Options(**given)
    try:
        options.check()
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None
    return options


def compare(paths: str | Path | Iterable[str | Path], **options: Any) -> Comparison:
    """The comparison of every finished run under `paths` (run folders or sweep folders).

    Options (all optional): baseline (a configuration's label, or a unique part of it: `item_tower=id`; without
    it every pair is compared), metrics (per-user columns; default: the monitored metric and its recall), split
    (`test` or `val`), test (`wilcoxon`, `t`, `permutation`), correction (`holm`, `bonferroni`, `bh`), alpha,
    permutations, resamples, confidence, seed. Bad input (a missing folder, runs that cannot be paired, an unknown
    baseline or metric, a run without per-user files) raises an `lmrec.errors.InputError` with a one-line message.
    """
    checked = make_options(options)
    folders = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    return compare_runs(find_runs(folders), checked)


def report(paths: str | Path | Iterable[str | Path], out: str | Path | None = None, **options: Any) -> dict[str, Path]:
    """`compare(paths, **options)` written as a report into `out` (default: `<first path>/compare`)."""
    from lmrec.compare.report import write_report

    folders = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not folders:
        raise ConfigError("no folder to compare")
    return write_report(compare(folders, **options), Path(out) if out is not None else folders[0] / "compare")
