"""What reaches experiment loggers."""

from __future__ import annotations

import sys

import pytest
from omegaconf import OmegaConf

from lmrec.runtime.loggers import redact_secrets, redacted_argv, wandb_mode


def test_secrets_never_reach_loggers():
    cfg = {"logger": {"wandb": {"api_key": "abc", "project": "p"}}, "hub_token": "t", "items": [{"password": "x"}]}
    assert redact_secrets(cfg) == {
        "logger": {"wandb": {"api_key": "***", "project": "p"}},
        "hub_token": "***",
        "items": [{"password": "***"}],
    }


def _wandb_cfg(**options):
    return OmegaConf.create({"_target_": "pytorch_lightning.loggers.WandbLogger", "offline": None, **options})


@pytest.fixture
def no_netrc(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc from `wandb login`
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_wandb_message_says_why_the_run_is_offline(no_netrc):
    assert wandb_mode(_wandb_cfg()) == (
        True,
        "no API key found, logging offline (sync later with the command printed at the end)",
    )
    no_netrc.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_mode(_wandb_cfg()) == (False, None)
    no_netrc.setenv("WANDB_MODE", "offline")
    offline, reason = wandb_mode(_wandb_cfg())
    assert offline and reason.startswith("logging offline because WANDB_MODE=offline (an API key is set")
    offline, reason = wandb_mode(_wandb_cfg(offline=True))
    assert offline and reason.startswith("logging offline because logger.wandb.offline=true (an API key is set")
    no_netrc.setenv("WANDB_MODE", "disabled")
    assert wandb_mode(_wandb_cfg()) == (False, "disabled by WANDB_MODE=disabled: nothing is logged to W&B")


def test_a_key_in_the_loggers_settings_counts_as_credentials(no_netrc):
    assert wandb_mode(_wandb_cfg(settings={"api_key": "k" * 40})) == (False, None)


def test_wandb_records_the_command_line_redacted(no_netrc, monkeypatch):
    """What W&B stores as the run's arguments (its metadata, synced with the run) while the run starts."""
    argv = ["lmrec-train", "+logger.wandb.settings={api_key:SECRETXYZ123}", "+a.token=SECRETXYZ123", "seed=3"]
    monkeypatch.setattr(sys, "argv", argv)
    with redacted_argv():
        seen = list(sys.argv)
    assert seen == ["lmrec-train", "+logger.wandb.settings={api_key:***}", "+a.token=***", "seed=3"]
    assert sys.argv == argv  # the program (and DDP ranks it starts later) keep the real one
