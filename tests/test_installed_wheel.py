"""lmrec works installed from a wheel, away from any checkout: configs, bundled data and entry points ship inside it.

The wheel is built from this checkout and installed (without dependencies) into a fresh virtual environment, which
borrows the test environment's installed dependencies through a path entry, so the test needs no second multi-GB
torch install. Dependency resolution itself is what every `pip install` of the project checks; what only a wheel
shows is whether the package is complete without the checkout: that `lmrec.conf` and `lmrec.bundled` are in it,
that Hydra finds the configs through `pkg://lmrec.conf`, and that outputs go to the current directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the lmrec wheel (plus a path entry to this environment's dependencies)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"  # a copy of what the package is built from: the build leaves the checkout untouched
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    for name in ("src", "conf", "data"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (base / "dist").glob("lmrec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lmrec/conf/train.yaml" in names and "lmrec/conf/data/movielens_small.yaml" in names
    assert "lmrec/bundled/ml-latest-small/README.txt" in names  # the licence travels with the data
    assert (
        "lmrec/bundled/ml-latest-small/ratings.csv" in names
        and "lmrec/data/known_checksums/ml-latest-small.sha256" in names
    )

    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # A plain path line: this environment's packages become importable, its .pth files (the editable lmrec) do not run.
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    return env_dir


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "LMREC_", "PYTHONPATH"))}
    return env | {"HOME": str(home), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def test_installed_lmrec_trains_from_any_directory(installed, tmp_path):
    where = subprocess.check_output(
        [str(installed / "bin" / "python"), "-c", "import lmrec.conf, lmrec.bundled; print(lmrec.conf.__file__)"],
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert Path(where.strip()).is_relative_to(installed)  # the wheel's copy, not the checkout's
    result = subprocess.run(
        [str(installed / "bin" / "lmrec-train"), "data.max_users=30", "trainer.max_epochs=1", "logger=csv"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (metrics_file,) = (tmp_path / "outputs" / "runs").glob("*/*/metrics.json")  # outputs in the current directory
    assert {"test/rmse", "best/val/rmse"} <= set(json.loads(metrics_file.read_text()))
    assert (tmp_path / ".cache" / "lmrec" / "item_embeddings").is_dir()
    info = json.loads((metrics_file.parent / "run.json").read_text())
    assert info["data_stats"]["users"] == 30
    assert info["provenance"]["git_commit"] is None  # an installed package is not a checkout


def test_a_users_own_config_directory_adds_configs(installed, tmp_path):
    own = tmp_path / "my_configs" / "experiment"
    own.mkdir(parents=True)
    (own / "tiny.yaml").write_text("# @package _global_\ndata:\n  max_users: 7\nseed: 3\n")
    result = subprocess.run(
        [
            str(installed / "bin" / "lmrec-train"),
            "--config-dir",
            str(tmp_path / "my_configs"),
            "experiment=tiny",
            "--cfg",
            "job",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "max_users: 7" in result.stdout and "seed: 3" in result.stdout
