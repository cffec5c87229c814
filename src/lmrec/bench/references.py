"""Optional reference libraries the benchmarks compare lmrec against: what a record says about them, and RecBole's
one compatibility shim.

A reference is measured only where it is importable; its record then names it and its version, and otherwise
says "not installed", so a benchmark never fails (or rots) because a reference library is missing.
"""

from __future__ import annotations

import importlib
from typing import Any

from lmrec.bench.registry import IMPORT_NAMES, importable

NOT_INSTALLED = "not installed"


def describe(package: str) -> dict[str, str] | str:
    """{"name", "version"} of an installed reference (by pip name), else "not installed"."""
    if not importable(package):
        return NOT_INSTALLED
    module = importlib.import_module(IMPORT_NAMES.get(package, package))
    return {"name": package, "version": str(getattr(module, "__version__", "unknown"))}


def numpy2_aliases() -> None:
    """RecBole 1.2.1's `Config` re-creates numpy<1.24 aliases from `np.float_`, `np.complex_` and `np.unicode_`,
    which numpy 2 removed; provide those three so it runs unchanged (nothing else of RecBole is changed)."""
    import numpy as np

    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, old):
            setattr(np, old, new)


def recbole_trainer(config: Any, model: Any, workdir: Any) -> Any:
    """RecBole's Trainer, created in `workdir` (it writes log_tensorboard/ into the working directory)."""
    import os

    from recbole.trainer import Trainer

    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        return Trainer(config, model)
    finally:
        os.chdir(cwd)
