"""Where lmrec finds its configs and bundled data, and where a run's outputs go, installed or in a checkout.

The configs ship as the package `lmrec.conf` and the bundled dataset as `lmrec.bundled` (both mapped from the
checkout's top-level `conf/` and `data/` folders by setup.py), so Hydra's `pkg://lmrec.conf` search path and
`importlib.resources` find them the same way in an editable checkout (where they are those folders) and in an
installed wheel (where they are package data). Outputs and caches go to the checkout when lmrec runs from one,
and to the current directory when it is installed; `LMREC_ROOT` overrides both.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: Hydra search path of the packaged configs (`@hydra.main(config_path=CONFIG_PATH)`).
CONFIG_PACKAGE = "lmrec.conf"
CONFIG_PATH = f"pkg://{CONFIG_PACKAGE}"
BUNDLED_DATA_PACKAGE = "lmrec.bundled"

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def config_dir() -> Path:
    """The folder holding train.yaml, eval.yaml and the config groups."""
    return Path(str(resources.files(CONFIG_PACKAGE)))


def bundled_data_dir() -> Path:
    """The folder holding the bundled dataset(s) (`ml-latest-small/` with its README.txt licence)."""
    return Path(str(resources.files(BUNDLED_DATA_PACKAGE)))


def checkout_root() -> Path | None:
    """The source checkout lmrec is imported from (an editable install), or None for an installed wheel."""
    candidate = PACKAGE_DIR.parents[1]  # <root>/src/lmrec -> <root>
    if PACKAGE_DIR.parent.name == "src" and (candidate / "pyproject.toml").is_file():
        return candidate
    return None


def project_root() -> str:
    """Resolver `${lmrec.project_root:}`: the folder under which `outputs/` and `.cache/` live."""
    return os.environ.get("LMREC_ROOT") or str(checkout_root() or Path.cwd())


def bundled_data() -> str:
    """Resolver `${lmrec.bundled_data:}`: the default `paths.data_dir`."""
    return str(bundled_data_dir())
