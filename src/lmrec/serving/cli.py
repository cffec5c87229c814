"""`lmrec-recommend`, `lmrec-similar`, `lmrec-explain` and `lmrec-serve`: a trained run from the command line.

Arguments are `key=value` as in the other lmrec commands (`run=outputs/runs/... user=1 k=10`; a list is
`history=[1,2,3]`), plus `--json` for machine-readable output. They are not Hydra apps: they compose no config
and write no run folder, they read one. Every argument is checked before the run is loaded, and a wrong one is one
line naming it (exit 2).
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from lmrec.errors import InputError, report_input_errors

COMMON = {
    "run": "a run folder, or a checkpoint inside one",
    "checkpoint": "best, last, or a path in the run",
    "data_dir": "where the run's data moved to",
}
COMMANDS: dict[str, dict[str, str]] = {
    "lmrec-recommend": {
        **COMMON,
        "user": "a user of the run's data",
        "history": "item ids, oldest first: [1,2,3]",
        "text": "a text describing the user",
        "k": "how many items (10)",
        "exclude_seen": "leave out what the user has (true)",
        "candidates": "rank only these item ids",
    },
    "lmrec-similar": {
        **COMMON,
        "item": "an item of the catalogue",
        "text": "a text, as a new item",
        "k": "how many (10)",
    },
    "lmrec-explain": {**COMMON, "item": "the item whose score is explained", "user": "a user", "history": "item ids"},
    "lmrec-serve": {
        **COMMON,
        "host": "address to listen on (127.0.0.1)",
        "port": "port (8000)",
        "log_level": "uvicorn's log level (warning)",
        "workers": "processes answering requests, each with its own copy of the model (1)",
    },
}


def parse_arguments(command: str, argv: Sequence[str]) -> tuple[dict[str, Any], bool]:
    """(the `key=value` arguments, with values read as YAML scalars or lists; whether `--json` was given)."""
    known = COMMANDS[command]
    values: dict[str, Any] = {}
    as_json = False
    for arg in argv:
        if arg == "--json":
            as_json = True
            continue
        if arg in ("-h", "--help"):
            print(usage(command))
            sys.exit(0)
        key, sep, raw = arg.partition("=")
        if not sep:
            raise InputError(f"{command}: argument {arg!r} is not key=value ({usage_line(command)})")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(known)}"
            raise InputError(f"{command}: unknown argument {key!r}{hint}")
        try:
            values[key] = yaml.safe_load(raw) if key != "text" else raw
        except yaml.YAMLError:
            raise InputError(f"{command}: {key}={raw!r} is not a value or a [list]") from None
    if "run" not in values:
        raise InputError(f"{command}: run=<run folder> is required ({usage_line(command)})")
    return values, as_json


def usage_line(command: str) -> str:
    return f"usage: {command} " + " ".join(f"{key}=..." for key in COMMANDS[command]) + " [--json]"


def usage(command: str) -> str:
    lines = [usage_line(command), ""]
    lines += [f"  {key:<13} {meaning}" for key, meaning in COMMANDS[command].items()]
    lines.append("  --json        print JSON instead of a table")
    return "\n".join(lines)


def _load(values: dict[str, Any]) -> Any:
    from lmrec.serving.recommender import load

    return load(values.pop("run"), str(values.pop("checkpoint", "best")), values.pop("data_dir", None))


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [
        [str(row.get(c, "")) if not isinstance(row.get(c), float) else f"{row[c]:.4f}" for c in columns] for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    line = lambda parts: "  ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _print(result: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    try:
        print(json.dumps(result, indent=1, default=str) if as_json else render(result), flush=True)
    except BrokenPipeError:  # `| head` closed the pipe: what it wanted was printed; no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's documented remedy
        sys.exit(0)


def _run(command: str, answer: Callable[[Any, dict[str, Any]], Any], render: Callable[[Any], str]) -> None:
    with report_input_errors():
        values, as_json = parse_arguments(command, sys.argv[1:])
        rec = _load(values)
        result = answer(rec, values)
    _print(result, as_json, render)


def _items(found: list) -> list[dict[str, Any]]:
    return [r.as_dict() for r in found]


def recommend_main() -> None:
    """`lmrec-recommend run=... user=... k=10`."""
    _run(
        "lmrec-recommend",
        lambda rec, v: _items(rec.recommend(**v)),
        lambda rows: _table(rows, ["rank", "item_id", "score", "title"]),
    )


def similar_main() -> None:
    """`lmrec-similar run=... item=...`."""
    _run(
        "lmrec-similar",
        lambda rec, v: _items(rec.similar(**v)),
        lambda rows: _table(rows, ["rank", "item_id", "score", "title"]),
    )


def _explanation(result: dict[str, Any]) -> str:
    head = f"{result['title']} ({result['item']}): score {result['score']:.4f}, {result['method']}"
    if result["method"] == "none":
        return f"{head}: {result['reason']}"
    extra = f"; constant {result['constant']:.4f}" if "constant" in result else ""
    body = _table(result["contributions"], ["contribution", "item_id", "title"])
    return f"{head}{extra}\n{result['note']}\n\n{body}"


def explain_main() -> None:
    """`lmrec-explain run=... user=... item=...`."""
    _run("lmrec-explain", lambda rec, v: rec.explain(**v), _explanation)


#: Math libraries' thread pools, one thread each in a server: set before numpy and torch are imported (their pools
#: start at import), they keep idle threads from spin-waiting on the cores that other requests and workers need.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def serve_main() -> None:
    """`lmrec-serve run=... port=8000`."""
    import os

    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")  # inherited by worker processes too
    with report_input_errors():
        try:
            from lmrec.serving.service import serve
        except ImportError as err:
            raise InputError(f"lmrec-serve needs FastAPI and uvicorn ({err}): pip install 'lmrec[serve]'") from None

    with report_input_errors():
        values, _ = parse_arguments("lmrec-serve", sys.argv[1:])
        options = {key: values.pop(key) for key in ("host", "port", "log_level", "workers") if key in values}
        options["run"] = {
            "run": str(values["run"]),
            "checkpoint": str(values.get("checkpoint", "best")),
            "data_dir": values.get("data_dir"),
        }
        rec = _load(values)
        print(
            f"serving {rec.describe()['run']} on http://{options.get('host', '127.0.0.1')}:{options.get('port', 8000)}"
        )
    serve(rec, **options)
