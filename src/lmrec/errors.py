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


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the config points at does not exist or lacks something required."""


class EncoderUnavailableError(InputError, OSError):
    """The text encoder named in the config cannot be found locally or fetched."""


@contextmanager
def report_input_errors(exit_code: int = 2) -> Iterator[None]:
    """Turn an InputError into one logged line and a non-zero exit; bugs keep their traceback."""
    try:
        yield
    except InputError as err:
        logging.getLogger("lmrec").error("%s: %s", type(err).__name__, err)
        sys.exit(exit_code)
