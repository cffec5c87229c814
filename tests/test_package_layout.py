"""The package's shape: no import cycles, small modules, and tests that mirror the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "lmrec"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """lmrec modules `path` imports, anywhere in the file (lazy imports inside functions count too), except under
    `if TYPE_CHECKING:`, which never runs."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (as a path that starts and ends at the same module), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    # A package's __init__ runs before any of its modules, so importing lmrec.a.b also imports lmrec.a; those
    # edges are implicit and harmless as long as the __init__ files import nothing themselves (checked below).
    return {name: imported_modules(path, known) - {name} for name, path in found.items()}


def test_no_module_of_lmrec_imports_in_a_cycle():
    assert find_cycle(import_graph()) is None, f"import cycle: {' -> '.join(find_cycle(import_graph()))}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_package_init_files_import_nothing_from_lmrec():
    inits = {name: path for name, path in modules().items() if path.name == "__init__.py"}
    known = set(modules())
    assert {name: imported_modules(path, known) for name, path in inits.items() if imported_modules(path, known)} == {}


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_stay_small(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it (one job per module)"


def test_tests_mirror_the_source_tree():
    """Every test folder names a package of lmrec (tests/data/io -> lmrec.data.io), so a test is found by the name
    of what it tests."""
    packages = {name for name, path in modules().items() if path.name == "__init__.py"}
    tests = REPO_ROOT / "tests"
    folders = {p.parent for p in tests.rglob("test_*.py")} - {tests}
    unmatched = ["lmrec." + ".".join(f.relative_to(tests).parts) for f in folders]
    assert [name for name in unmatched if name not in packages] == []


#: Layers from the top (imported by everything) down (imports everything), as docs/architecture.md lists them.
LAYERS = [
    ("lmrec", "lmrec.errors", "lmrec.atomic"),
    ("lmrec.config",),
    ("lmrec.runtime",),
    ("lmrec.data",),
    ("lmrec.encoders",),
    ("lmrec.tasks",),
    ("lmrec.model",),
    ("lmrec.runs",),
    ("lmrec.compare",),
    ("lmrec.sweeps",),
    ("lmrec.study",),
    ("lmrec.cli", "lmrec.serving"),
    ("lmrec.bench",),
]
#: The one documented exception: the resolvers the configs use are defined where their subject lives.
RESOLVERS = "lmrec.config.resolvers"


def layer(module: str) -> int:
    matches = [(len(prefix), i) for i, prefixes in enumerate(LAYERS) for prefix in prefixes if module == prefix]
    matches += [(len(p), i) for i, ps in enumerate(LAYERS) for p in ps if module.startswith(p + ".") and p != "lmrec"]
    return max(matches)[1] if matches else 0


def test_modules_import_only_from_their_layer_and_above():
    upward = [
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        for target in targets
        if layer(target) > layer(source) and source != RESOLVERS
    ]
    assert upward == []
