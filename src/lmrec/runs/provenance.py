"""Where a run's code came from: the git commit (and whether the tree had local changes) and library versions.

A metric is only as trustworthy as the code that produced it. A dirty tree means the commit alone cannot
reproduce the run; differing torch or transformers versions explain small numeric differences between runs.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from lmrec.config.location import checkout_root

#: Distributions whose version can change a run's numbers (peft joins once tuning modes use it).
TRACKED_PACKAGES = ("lmrec", "torch", "transformers", "pytorch-lightning", "peft", "torchmetrics", "hydra-core")


def package_version(name: str) -> str | None:
    """Installed version, or None when the package is not installed (recorded as null, not as an error)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout lmrec runs from; nulls for an installed package (whose folder may
    sit inside some other repository) and outside a git checkout.

    Untracked files count as dirty (except ignored ones such as outputs and caches): a new config file the run
    used is not in the commit either.
    """
    root = root if root is not None else checkout_root()
    commit = _git(root, "rev-parse", "HEAD") if root is not None else None
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = _git(root, "status", "--porcelain")
    return {"git_commit": commit.strip(), "git_dirty": bool(status.strip()) if status is not None else None}


def provenance() -> dict[str, Any]:
    """Everything recorded in run.json and the W&B config under `provenance`."""
    versions = {name.replace("-", "_"): package_version(name) for name in TRACKED_PACKAGES}
    return {**git_state(), "python": platform.python_version(), "versions": versions}
