"""Errors a person fixes by editing a data file or a config value.

The entry points print these as one line (file, line, column or config key, and what was expected) instead of a
traceback: the traceback would point into lmrec, while the mistake is in the user's input.
"""

from __future__ import annotations

import errno
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


class EnvironmentProblem(InputError, OSError):
    """The machine refused a read or write lmrec needs: no permission, a read-only or full disk. The user fixes it
    (permissions, space, another folder), so it is one line naming the path, not a traceback."""


#: errno -> what to do about it, for the OSErrors that are the user's environment rather than a bug.
ENVIRONMENT_ERRNOS = {
    errno.EACCES: "fix its permissions, or point lmrec at another folder (paths.data_dir, paths.cache_dir, "
    "hydra.run.dir)",
    errno.EPERM: "fix its permissions, or point lmrec at another folder (paths.data_dir, paths.cache_dir, "
    "hydra.run.dir)",
    errno.EROFS: "it is on a read-only file system: point paths.cache_dir or hydra.run.dir at a writable folder",
    errno.ENOSPC: "the disk is full: free space, or point paths.cache_dir / hydra.run.dir at a disk with room "
    "(a half-written cache entry or checkpoint is never left as if it were whole)",
    errno.EDQUOT: "the disk quota is used up: free space, or point paths.cache_dir / hydra.run.dir elsewhere",
}


def environment_problem(err: OSError) -> EnvironmentProblem | None:
    """`err` as one actionable line when it is one of ENVIRONMENT_ERRNOS, else None (a bug keeps its traceback)."""
    advice = ENVIRONMENT_ERRNOS.get(err.errno) if isinstance(err.errno, int) else None
    if advice is None:
        return None
    where = f"{err.filename}: " if err.filename else ""
    return EnvironmentProblem(f"{where}{err.strerror or type(err).__name__}; {advice}")


@contextmanager
def report_input_errors(exit_code: int = 2, exit_process: bool = True) -> Iterator[None]:
    """Turn an InputError (or an OSError that is the machine's refusal: permission, read-only, disk full) into one
    logged line and a non-zero exit; bugs keep their traceback.

    With exit_process=False (a job of a multirun) the error is logged and re-raised instead: SystemExit would end
    the whole sweep, while an exception only marks this job as failed and lets the other jobs run.
    """
    try:
        try:
            yield
        except OSError as raw:
            problem = raw if isinstance(raw, InputError) else environment_problem(raw)
            if problem is None:
                raise
            raise problem from None
    except InputError as err:
        logging.getLogger("lmrec").error("%s: %s", type(err).__name__, err)
        if not exit_process:
            raise
        sys.exit(exit_code)


class RequestError(InputError, ValueError):
    """A request a trained model cannot answer as asked: an unknown id, a history a model cannot read, a k out of
    range. The service answers it with a 4xx and this one line, never a traceback."""
