"""Only allowed `_target_`s are built: every one in a node is checked before anything in it is."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from lmrec.config.allowlist import ENV_VAR, check_targets
from lmrec.config.instantiate import instantiate_checked, instantiate_with, target_parameters
from lmrec.errors import ConfigError


class Recorder:
    """A researcher's own component; counts how often it was built."""

    built = 0

    def __init__(self, child=None, **kwargs):
        type(self).built += 1
        self.child = child


@pytest.fixture(autouse=True)
def _no_user_prefixes(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    Recorder.built = 0


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("builtins.open", "builtins.open is not on lmrec's allow-list"),
        ("os.system", "os.system is not on lmrec's allow-list"),
        ("lmrecevil.Tower", "lmrecevil.Tower is not on lmrec's allow-list"),
        # an allowed module's imports are not allowed with it
        ("lmrec.runtime.loggers.os.system", "resolves to posix.system"),
        ("torch.optim.optimizer.torch.load", "resolves to torch.serialization.load"),
        # lmrec's own functions can write files: only the named ones may be called
        ("lmrec.atomic.write_json_atomic", "resolves to lmrec.atomic.write_json_atomic"),
    ],
)
def test_targets_off_the_list_are_refused_with_the_key_and_how_to_allow_them(target, shown, tmp_path):
    cfg = OmegaConf.create({"trainer": {"plugins": [{"_target_": target, "_args_": [str(tmp_path / "x"), "w"]}]}})
    with pytest.raises(ConfigError) as err:
        instantiate_checked(cfg.trainer)
    message = str(err.value)
    assert message.startswith(f"trainer.plugins[0]._target_={target}") and shown in message
    assert ENV_VAR in message and "\n" not in message
    assert not (tmp_path / "x").exists()


def test_a_refused_target_anywhere_stops_the_whole_node_before_anything_is_built(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "tests.config.test_allowlist.Recorder")
    opened = tmp_path / "opened"
    bad = {"_target_": "builtins.open", "_args_": [str(opened), "w"]}
    nodes = {
        "model.user_tower": {"_target_": f"{__name__}.Recorder", "child": bad},  # nested mapping
        "model.head": {"_target_": f"{__name__}.Recorder", "_args_": [[bad]]},  # inside _args_ lists
        "task": {"_target_": f"{__name__}.Recorder", "_partial_": True, "child": {**bad, "_partial_": True}},
        "data.source": {"_target_": f"{__name__}.Recorder", "child": "${other}", "other": bad},  # interpolated
    }
    for key, node in nodes.items():
        with pytest.raises(ConfigError, match="builtins.open"):
            instantiate_checked(OmegaConf.create(node))
        with pytest.raises(ConfigError, match=rf"^{key}\..*builtins\.open"):
            instantiate_with(OmegaConf.create(node), {}, key=key)
    assert Recorder.built == 0 and not opened.exists()


def test_a_target_hidden_behind_an_interpolation_is_seen():
    cfg = OmegaConf.create({"name": "builtins.open", "node": {"_target_": "${name}", "_args_": ["x"]}})
    with pytest.raises(ConfigError, match=r"node\._target_=builtins\.open"):
        instantiate_checked(cfg.node)


def test_the_environment_variable_allows_a_researchers_own_components(monkeypatch):
    cfg = OmegaConf.create({"_target_": f"{__name__}.Recorder"})
    with pytest.raises(ConfigError, match=ENV_VAR):
        instantiate_checked(cfg)
    monkeypatch.setenv(ENV_VAR, "somewhere.else., tests.config.")
    assert isinstance(instantiate_checked(cfg), Recorder) and Recorder.built == 1
    assert "child" in target_parameters(cfg)


def test_a_config_cannot_extend_the_list(monkeypatch):
    """Only the environment of the process counts; a saved config naming the variable changes nothing."""
    crafted = OmegaConf.create(
        {
            "LMREC_ALLOWED_TARGETS": "builtins.",
            "hydra": {"job": {"env_set": {ENV_VAR: "builtins."}}},
            "node": {"_target_": "builtins.open", "_args_": ["x"]},
        }
    )
    with pytest.raises(ConfigError, match="builtins.open"):
        check_targets(crafted)


def test_lmrecs_own_pieces_are_allowed():
    optimizer = instantiate_checked(OmegaConf.create({"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 0.1}))
    assert optimizer.func.__name__ == "AdamW" and optimizer.keywords["lr"] == 0.1
    plugin = {"_target_": "pytorch_lightning.plugins.environments.LightningEnvironment"}
    trainer = instantiate_checked(
        OmegaConf.create({"_target_": "pytorch_lightning.Trainer", "plugins": [plugin], "logger": False}),
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    assert type(trainer._accelerator_connector.cluster_environment).__name__ == "LightningEnvironment"
