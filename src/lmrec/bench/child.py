"""Run one measurement in a fresh Python process: `run_child("lmrec.bench.x:function", {...})`.

Why a fresh process: a process's peak resident memory only grows, so the peak of a phase measured after another
one would be the larger of the two; and some settings (OpenMP's wait policy, torch's thread pool) are read once,
when torch loads. The child imports only what the function imports, prints its JSON result on a marked line, and
the parent reads it back.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from typing import Any

MARKER = "lmrec-bench-result: "
#: Only functions of the benchmark package may be called this way (the target comes from code, never a file).
ALLOWED = "lmrec.bench."


def run_child(target: str, kwargs: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    """`module:function(**kwargs)` in a new interpreter; its (JSON) return value, or a RuntimeError with the end
    of the child's stderr."""
    if not target.startswith(ALLOWED):
        raise ValueError(f"run_child calls functions under {ALLOWED} only, not {target}")
    command = [sys.executable, "-m", "lmrec.bench.child", target, json.dumps(kwargs)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{target} failed in its child process (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARKER) :])


def call(target: str, kwargs: dict[str, Any], fresh: bool = True, env: dict[str, str] | None = None) -> Any:
    """`run_child`, or with `fresh=False` the same function called in this process (a quick run checks the
    measurement works, where a fresh interpreter per phase would cost seconds each and isolate nothing it needs)."""
    if fresh:
        return run_child(target, kwargs, env)
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(**json.loads(json.dumps(kwargs)))


def main(argv: list[str] | None = None) -> int:
    """The child side of `run_child`: call the target with the JSON arguments, print the marked result."""
    target, arguments = (argv if argv is not None else sys.argv[1:])[:2]
    if not target.startswith(ALLOWED):
        raise SystemExit(f"only functions under {ALLOWED} run here, not {target}")
    module, _, function = target.partition(":")
    result = getattr(importlib.import_module(module), function)(**json.loads(arguments))
    print(MARKER + json.dumps(result), flush=True)
    return 0


def echo(**kwargs: Any) -> dict[str, Any]:
    """Its arguments back, and this process's id: how the tests check the round trip costs nothing heavy."""
    import os

    return {"kwargs": kwargs, "pid": os.getpid()}


if __name__ == "__main__":
    raise SystemExit(main())
