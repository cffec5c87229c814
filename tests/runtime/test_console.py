"""No secret reaches the console on any path, crashes included: the streams themselves are redacted."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from lmrec.runtime.console import RedactingStream

KEY = "sk-" + "CRASHSECRET7" * 4

#: A component of the user's own that crashes the fit: the crash lmrec cannot foresee.
CRASH = """
import pytorch_lightning as pl


class Crash(pl.Callback):
    def on_fit_start(self, trainer, pl_module):
        raise RuntimeError("something a user's component got wrong")
"""


def test_a_redacting_stream_redacts_what_it_writes_and_is_the_stream_otherwise():
    target = io.StringIO()
    stream = RedactingStream(target)
    assert stream.write("Error executing job with overrides: ['+logger.wandb.settings={api_key:abcdefgh}']\n") > 0
    assert target.getvalue() == "Error executing job with overrides: ['+logger.wandb.settings={api_key:***}']\n"
    assert stream.getvalue() == target.getvalue()  # anything but writing is the wrapped stream's
    stream.writelines(["token=abc12345 ", "plain\n"])
    assert target.getvalue().endswith("token=*** plain\n")


def test_a_crash_shows_no_secret_on_either_stream(tmp_path):
    """lmrec-train crashing inside the fit with a key on the command line: Hydra repeats the overrides on stderr,
    Python prints the traceback; the key appears on neither stream, nor in the run folder's log."""
    (tmp_path / "crash_component.py").write_text(CRASH)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), WANDB_MODE="offline", WANDB_SILENT="true", HF_HUB_OFFLINE="1",
               PYTHONPATH=str(tmp_path), LMREC_ALLOWED_TARGETS="crash_component.")  # fmt: skip
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lmrec-train"), "model=mf", "data.max_users=30", "trainer.max_epochs=1",
         f"+logger.wandb.settings={{api_key:{KEY}}}", "+callbacks.crash={_target_:crash_component.Crash}",
         f"hydra.run.dir={run_dir}", f"paths.cache_dir={tmp_path / 'cache'}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "something a user's component got wrong" in result.stderr  # the crash is reported...
    assert "Error executing job with overrides" in result.stderr and "api_key:***" in result.stderr
    assert KEY not in result.stdout + result.stderr  # ...without the key
    assert KEY not in (run_dir / "train.log").read_text()
