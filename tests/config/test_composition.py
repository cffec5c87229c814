"""A command line that does not compose, or adds a key no component has, is one line naming it (exit code 2)."""

from __future__ import annotations

import pytest

from lmrec.cli.components import build_data
from lmrec.config.composition import check_composes
from lmrec.errors import ConfigError
from tests.helpers import compose_train, run_cli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data.bacth_size=64"], "data.bacth_size is not an option (did you mean data.batch_size? to add a key of "
         "your own use +data.bacth_size=64)"),
        (["model=foo"], "model=foo is not an option of the model group; choose one of als, biases, default, ease,"),
        (["model/tuning=lorra"], "model/tuning=lorra is not an option of the model/tuning group; choose one of "
         "adalora, adapter, frozen,"),
        (["trainer=cpu"], "trainer=cpu is not an option of the trainer group; choose one of ddp, ddp_sim"),
    ],
)  # fmt: skip
def test_a_command_line_that_does_not_compose_is_one_line(argv, message):
    with pytest.raises(ConfigError) as info:
        check_composes("train", argv)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert "_tuned" not in str(info.value)  # internal files are not offered as choices


def test_composing_leaves_hydras_own_modes_alone():
    assert check_composes("train", ["-m", "seed=1,2"]) is None and check_composes("train", ["--help"]) is None
    assert check_composes("train", ["seed=3"]).seed == 3


def test_an_added_key_no_component_has_names_the_closest_one(tmp_path):
    cfg = compose_train(["+data.bacth_size=64"], tmp_path, tmp_path / "cache")
    with pytest.raises(ConfigError, match=r"^data \(lmrec.data.datamodule.RecDataModule\): bacth_size is not an "
                       r"option of it; did you mean batch_size\?$"):  # fmt: skip
        build_data(cfg)


def test_lmrec_train_says_it_in_one_line_with_exit_code_2(tmp_path):
    result = run_cli("lmrec-train", ["data.bacth_size=64"], home=tmp_path, ok=False)
    assert result.returncode == 2
    assert (result.stdout + result.stderr).strip().splitlines() == [
        "ConfigError: data.bacth_size is not an option (did you mean data.batch_size? to add a key of your own use "
        "+data.bacth_size=64)"
    ]
