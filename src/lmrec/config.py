"""Where the configs live, and the resolvers they use.

`${lmrec.project_root:}` lets the default paths point at the checkout (its data/, outputs/, .cache/) whatever
the working directory, so `lmrec-train` behaves the same when started from anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = str(PROJECT_ROOT / "conf")


def project_root() -> str:
    return os.environ.get("LMREC_ROOT") or str(PROJECT_ROOT)


if not OmegaConf.has_resolver("lmrec.project_root"):
    OmegaConf.register_new_resolver("lmrec.project_root", project_root)
