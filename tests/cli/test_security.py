"""A secret typed on the command line reaches no file of the run folder; a run folder is data, not code.

One tiny `lmrec-train` run (W&B offline, a key passed as `+logger.wandb.settings={api_key:...}` and a token as
`+model.hub_token=...`) is shared by the tests below.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

API_KEY = "SECRETXYZ123" * 4  # W&B checks a key's length (40+) even offline
TOKEN = "TOKENSECRET987"
TINY = ["data.max_users=8", "trainer.max_epochs=1", "model/item_tower=id"]


def _cli(script: str, args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    """An installed console script as a user runs it (no W&B credentials, empty HOME, outside the repo)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    environment.update(HOME=str(home), HF_HUB_OFFLINE="1", WANDB_SILENT="true", **env)
    return subprocess.run(
        [str(Path(sys.executable).parent / script), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=home,
        timeout=600,
    )


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("secret-run")
    run_dir, cache = base / "run", base / "cache"
    args = [*TINY, f"+logger.wandb.settings={{api_key:{API_KEY}}}", f"+model.hub_token={TOKEN}"]
    result = _cli(
        "lmrec-train", [*args, f"hydra.run.dir={run_dir}", f"paths.cache_dir={cache}"], base, WANDB_MODE="offline"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return {"dir": run_dir, "cache": cache, "base": base, "out": output}


def _files(folder: Path) -> list[Path]:
    return [Path(root) / name for root, _, names in os.walk(folder) for name in names]


def test_no_secret_reaches_any_file_of_the_run_folder(secret_run):
    run_dir = secret_run["dir"]
    files = _files(run_dir)
    assert any(p.suffix == ".wandb" for p in files)  # the offline W&B run that `wandb sync` would upload
    assert {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "train.log", "metrics.json"} <= {
        p.relative_to(run_dir).as_posix() for p in files
    }
    for secret in (API_KEY, TOKEN):
        holding = [str(p.relative_to(run_dir)) for p in files if p.is_file() and secret.encode() in p.read_bytes()]
        assert holding == [], f"{secret} in {holding}"
        assert secret not in secret_run["out"]  # nor on the console
    overrides = OmegaConf.load(run_dir / ".hydra" / "overrides.yaml")
    assert "+logger.wandb.settings={api_key:***}" in overrides and "+model.hub_token=***" in overrides
    assert OmegaConf.load(run_dir / ".hydra" / "config.yaml").model.hub_token == "***"


def test_the_log_says_why_wandb_is_offline(secret_run):
    log = (secret_run["dir"] / "train.log").read_text()
    assert "W&B: logging offline because WANDB_MODE=offline (an API key is set" in log
    assert "no API key found" not in log


def test_a_run_with_a_redacted_secret_is_still_evaluated(secret_run, tmp_path):
    """The saved config holds `***` where the secret was; the run folder's records still match it."""
    result = _cli(
        "lmrec-eval",
        [f"run={secret_run['dir']}", f"hydra.run.dir={tmp_path / 'eval'}", f"paths.cache_dir={secret_run['cache']}"],
        tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    evaluated = json.loads((tmp_path / "eval" / "eval_metrics.json").read_text())
    assert evaluated["test/rmse"] == pytest.approx(
        json.loads((secret_run["dir"] / "metrics.json").read_text())["test/rmse"]
    )


def _crafted(run_dir: Path, folder: Path, victim: Path) -> Path:
    """A copy of a real run folder whose saved config makes the trainer call `builtins.open(victim, "w")`; its
    run.json fingerprint is recomputed, as whoever crafted it would."""
    crafted = folder / "crafted"
    shutil.copytree(run_dir, crafted, symlinks=True)
    config_file = crafted / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(config_file)
    cfg.trainer.plugins = [{"_target_": "builtins.open", "_args_": [str(victim), "w"]}]
    OmegaConf.save(cfg, config_file)
    info = json.loads((crafted / "run.json").read_text())
    if "config_sha256" in info:
        from lmrec.runs.folder import config_sha256, saved_config

        info["config_sha256"] = config_sha256(saved_config(crafted))
        (crafted / "run.json").write_text(json.dumps(info))
    return crafted


def test_a_crafted_run_folder_cannot_make_lmrec_eval_run_code(secret_run, tmp_path):
    victim = tmp_path / "victim.txt"
    crafted = _crafted(secret_run["dir"], tmp_path, victim)
    result = _cli(
        "lmrec-eval",
        [f"run={crafted}", f"hydra.run.dir={tmp_path / 'eval'}", f"paths.cache_dir={secret_run['cache']}"],
        tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    errors = [line for line in output.splitlines() if "Error: " in line]
    assert "Traceback" not in output and len(errors) == 1, errors
    assert "trainer.plugins[0]._target_=builtins.open is not on lmrec's allow-list" in errors[0]
    assert "LMREC_ALLOWED_TARGETS" in errors[0] and "the run trained with" not in errors[0]
    assert not victim.exists()


def test_init_from_a_crafted_run_folder_loads_only_its_weights(secret_run, tmp_path):
    """`model.init_from` reads the folder's checkpoint (weights_only), never its config."""
    victim = tmp_path / "victim.txt"
    crafted = _crafted(secret_run["dir"], tmp_path, victim)
    result = _cli(
        "lmrec-train",
        [*TINY, "logger=csv", f"model.init_from={crafted}", f"hydra.run.dir={tmp_path / 'run'}"]
        + [f"paths.cache_dir={secret_run['cache']}"],
        tmp_path,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "initialised" in (tmp_path / "run" / "train.log").read_text()
    assert not victim.exists()
