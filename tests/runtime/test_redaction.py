"""Secrets out of Hydra's saved files, override strings and log lines (`lmrec.config.secrets`,
`lmrec.runtime.redaction`); the end-to-end check on a real run folder is in tests/cli/test_security.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra.types import RunMode
from omegaconf import OmegaConf

from lmrec.config import secrets
from lmrec.config.secrets import is_secret_key, redact_override, redact_text
from lmrec.runtime.redaction import RedactingFilter, RedactSecrets, config_secrets, redact_yaml_file

SECRET = "SECRETXYZ123"


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch):
    monkeypatch.setattr(secrets, "_known", set())


@pytest.mark.parametrize("key", ["api_key", "hub_token", "clientSecret", "WANDB_API_KEY", "db-password", "apiKey"])
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["num_virtual_tokens", "tokenizer", "data_key", "max_length", "monitor"])
def test_keys_that_only_look_like_secrets_are_kept(key):
    """`model.tuning.num_virtual_tokens` must survive in config_resolved.yaml: the run is redone from it."""
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("override", "redacted"),
    [
        (f"+logger.wandb.settings={{api_key:{SECRET}}}", "+logger.wandb.settings={api_key:***}"),
        (f"+a.b.token={SECRET}", "+a.b.token=***"),
        (f"++model.hub_token='{SECRET}'", "++model.hub_token=***"),
        (f"+x={{name:n,auth:{{password:{SECRET}}},tags:[a,b]}}", "+x={name:n,auth:{password:***},tags:[a,b]}"),
        ("seed=1,2", "seed=1,2"),
        ("model/tuning=prefix", "model/tuning=prefix"),
        ("model.tuning.num_virtual_tokens=20", "model.tuning.num_virtual_tokens=20"),
    ],
)
def test_overrides_are_redacted_where_they_hold_secrets(override, redacted):
    assert redact_override(override) == redacted


def test_free_text_loses_known_values_and_secret_pairs(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "envkey-0123456789")
    text = f"key envkey-0123456789 here; {{'api_key': '{SECRET}'}} token={SECRET} tokens=128 ${{oc.env:TOKEN}}"
    assert redact_text(text) == "key *** here; {'api_key': '***'} token=*** tokens=128 ${oc.env:TOKEN}"


def test_log_records_are_redacted_message_and_traceback(monkeypatch):
    secrets.remember_secrets({SECRET})
    logger = logging.getLogger("lmrec.tests.redaction")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    # An earlier test (or library) may have raised the "lmrec" level or called logging.disable: undo both here.
    monkeypatch.setattr(logger, "level", logging.INFO)
    previous_disable = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    try:
        logger.warning("overrides: %s", [f"+a.b={{c:{SECRET}}}"])
        try:
            raise ValueError(f"bad value {SECRET}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logging.disable(previous_disable)
    assert records and all(SECRET not in r for r in records)
    assert "+a.b={c:***}" in records[0] and "ValueError: bad value ***" in records[1]


def _job_config(tmp_path: Path, mode: RunMode) -> OmegaConf:
    return OmegaConf.create(
        {
            "model": {"hub_token": SECRET, "dim": 8},
            "logger": {"wandb": {"settings": {"api_key": "${oc.env:MY_KEY,none}"}}},
            "hydra": {
                "mode": mode,
                "output_subdir": ".hydra",
                "runtime": {"output_dir": str(tmp_path / "job")},
                "sweep": {"dir": str(tmp_path)},
                "overrides": {"task": [f"+model.hub_token={SECRET}", "model.dim=8"], "hydra": []},
                "job": {"override_dirname": f"+model.hub_token={SECRET},model.dim=8"},
            },
        }
    )


def test_the_callback_rewrites_hydras_files_before_the_job_runs(tmp_path):
    config = _job_config(tmp_path, RunMode.MULTIRUN)
    saved = tmp_path / "job" / ".hydra"
    saved.mkdir(parents=True)
    task = OmegaConf.masked_copy(config, ["model", "logger"])
    OmegaConf.save(task, saved / "config.yaml")
    OmegaConf.save(config.hydra, saved / "hydra.yaml")
    OmegaConf.save(config.hydra.overrides.task, saved / "overrides.yaml")
    OmegaConf.save(config, tmp_path / "multirun.yaml")
    RedactSecrets().on_job_start(config=config)
    for path in [*saved.iterdir(), tmp_path / "multirun.yaml"]:
        assert SECRET not in path.read_text(), path
    assert OmegaConf.load(saved / "overrides.yaml") == ["+model.hub_token=***", "model.dim=8"]
    kept = OmegaConf.load(saved / "config.yaml")
    assert kept.model == {"hub_token": "***", "dim": 8}
    assert OmegaConf.to_container(kept)["logger"]["wandb"]["settings"]["api_key"] == "${oc.env:MY_KEY,none}"
    assert config.model.hub_token == SECRET  # the job itself still gets the real value
    assert SECRET in secrets.known_secrets()  # and every later log line blanks it out


def test_files_without_secrets_are_left_untouched(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  dim: 8\n  name: ${x}\n")
    before = path.stat().st_mtime_ns
    assert not redact_yaml_file(path) and path.stat().st_mtime_ns == before


def test_secrets_of_a_config_come_from_values_and_overrides(tmp_path, monkeypatch):
    """Resolved values too: a key read from an environment variable of any name is blanked out of the logs."""
    monkeypatch.setenv("MY_KEY", "from-the-environment")
    config = _job_config(tmp_path, RunMode.RUN)
    config.hydra.overrides.task.append("+logger.wandb.settings={api_key:typed-on-the-line}")
    assert config_secrets(config) == {SECRET, "typed-on-the-line", "from-the-environment"}
