"""Errors a person fixes by editing a data file or a config value.

The entry points print these as one line (file, line, column or config key, and what was expected) instead of a
traceback: the traceback would point into lmrec, while the mistake is in the user's input.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class InputError(Exception):
    """Base of every error caused by bad input rather than by a bug."""


class ConfigError(InputError, ValueError):
    """A config value is invalid; the message names the key (e.g. `task.loss`) and the accepted values."""


class DataError(InputError, ValueError):
    """The data, though valid, cannot serve the configured task (e.g. a user who interacted with every item)."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the config points at does not exist or lacks something required."""


class EncoderUnavailableError(InputError, OSError):
    """The text encoder named in the config cannot be found locally or fetched."""


class RunFolderError(InputError, ValueError):
    """A run folder's files are damaged, escape the folder, or come from an incompatible lmrec layout."""


class CheckpointError(InputError, ValueError):
    """A checkpoint file is damaged, is not a Lightning checkpoint, or does not fit the model its run describes."""


@contextmanager
def report_input_errors(exit_code: int = 2, exit_process: bool = True) -> Iterator[None]:
    """Turn an InputError into one logged line and a non-zero exit; bugs keep their traceback.

    With exit_process=False (a job of a multirun) the error is logged and re-raised instead: SystemExit would end
    the whole sweep, while an exception only marks this job as failed and lets the other jobs run.
    """
    try:
        yield
    except InputError as err:
        logging.getLogger("lmrec").error("%s: %s", type(err).__name__, err)
        if not exit_process:
            raise
        sys.exit(exit_code)
