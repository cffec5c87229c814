"""What reaches experiment loggers."""

from __future__ import annotations

from lmrec.runtime.loggers import redact_secrets


def test_secrets_never_reach_loggers():
    cfg = {"logger": {"wandb": {"api_key": "abc", "project": "p"}}, "hub_token": "t", "items": [{"password": "x"}]}
    assert redact_secrets(cfg) == {
        "logger": {"wandb": {"api_key": "***", "project": "p"}},
        "hub_token": "***",
        "items": [{"password": "***"}],
    }
