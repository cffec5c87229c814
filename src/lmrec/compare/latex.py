"""A comparison as a LaTeX table for a paper: booktabs rules, the best value per metric in bold (direction-aware),
significance marks as superscripts, and a caption that names the test, the correction and alpha, so the table
can be read without the text around it.

Needs `\\usepackage{booktabs}` and, for the ▽ mark, `amssymb` (`\\triangledown`). Every label is escaped: the
configurations are named by their overrides, which hold `_`, `=` and sometimes `%` or `#`.
"""

from __future__ import annotations

from typing import Any

from lmrec.compare import cells as C

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}  # fmt: skip


def escape(text: str) -> str:
    """`text` as LaTeX prints it literally."""
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


def _mark(cell: C.Cell) -> str:
    mark = cell.mark()
    if not mark:
        return ""
    mark = mark.replace(C.BETTER, r"\dagger ").replace(C.WORSE, r"\triangledown ").replace(C.SEED_LEVEL, "*")
    return f"$^{{{mark.strip()}}}$"


def _number(value: float) -> str:
    return C.fmt_value(value).replace(C.DASH, "--")


def _cell(cell: C.Cell) -> str:
    mean = _number(cell.mean)
    text = rf"\textbf{{{mean}}}" if cell.best else mean
    if C.finite(cell.std):
        text += rf" $\pm$ {_number(cell.std)}"
    return text + _mark(cell)


def caption(comparison: dict[str, Any]) -> str:
    options = C.options(comparison)
    test = C.TEST_NAMES.get(options.get("test"), str(options.get("test")))
    correction = C.CORRECTION_NAMES.get(options.get("correction"), str(options.get("correction")))
    seeds = C.all_seeds(comparison)
    several = any(len(c["seeds"]) > 1 for c in comparison["configurations"])
    value = (f"Mean $\\pm$ std over {len(seeds)} seeds" if several
             else "Mean over users (one seed)")  # fmt: skip
    text = f"{value} ({escape(options.get('split'))} split). Best value per metric in bold."
    if comparison.get("pairs"):
        reference = escape(C.reference_label(comparison) or "")
        text += (f" $^\\dagger$: significantly better than {reference} under a {test} on per-user values with "
                 f"{correction} correction ($\\alpha = {options.get('alpha')}$)")  # fmt: skip
        text += "; $k/n$: in $k$ of $n$ seeds" if several else ""
        text += "; $^\\triangledown$: significantly worse"
        text += "; $^*$: the paired t-test over the seeds' means is significant too" if several else ""
        text += "."
    return text


def to_latex(comparison: dict[str, Any], label: str = "tab:lmrec-compare") -> str:
    """The table of the asked metrics (rows: configurations; cells: value, marks); ↑/↓ says which way is better."""
    metrics = C.top_metrics(comparison)
    columns = {m: {c.label: c for c in C.cells(comparison, m)} for m in metrics}
    arrows = [r"$\uparrow$" if C.higher_is_better(comparison, m) else r"$\downarrow$" for m in metrics]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption(comparison)}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{l" + "r" * len(metrics) + "}",
        r"\toprule",
        " & ".join(["Configuration", *(f"{escape(m)} {a}" for m, a in zip(metrics, arrows, strict=True))]) + r" \\",
        r"\midrule",
    ]
    for configuration in comparison["configurations"]:
        label_text = escape(configuration["label"])
        cells = [_cell(columns[m][configuration["label"]]) for m in metrics]
        lines.append(" & ".join([label_text, *cells]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
