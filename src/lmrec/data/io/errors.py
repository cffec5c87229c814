"""Exceptions raised while reading raw dataset files.

A bad input file should fail with a message that lets a person open the file at the
right place and fix it, so every error carries the path, the 1-based physical line
(header = line 1) and the column that was wrong, and says what was expected.
"""

from __future__ import annotations

import os

from lmrec.errors import InputError

__all__ = ["DataValidationError"]


class DataValidationError(InputError, ValueError):
    """A raw data file is missing, malformed or holds a value outside its contract.

    Attributes:
        path: the file, exactly as the caller named it (str or path-like).
        line: 1-based physical line in the file (header = 1), or ``None`` when the problem
            concerns the whole file (e.g. it is missing).
        column: the column name as spelled in the file's header, or ``None``.
        message: what was expected and what was found.

    ``str()`` gives ``path:line: column 'col': message``, the form editors and CI logs
    turn into a clickable location.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        line: int | None,
        column: str | None,
        message: str,
    ) -> None:
        super().__init__(path, line, column, message)
        self.path = path
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        location = os.fspath(self.path)
        if self.line is not None:
            location += f":{self.line}"
        if self.column is not None:
            return f"{location}: column {self.column!r}: {self.message}"
        return f"{location}: {self.message}"


def unreadable_reason(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot be read as a data file, in words a user acts on; None when it can.

    "file not found" for a directory or a symbolic-link loop sends a user looking for a file that is there, so each
    case says what it is."""
    import errno
    from pathlib import Path

    path = Path(path)
    try:
        info = path.stat()
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link loop, not a file"
        if path.is_symlink():
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        if err.errno == errno.EACCES:
            return "cannot be reached (permission denied on a folder above it)"
        return "file not found"
    import stat

    if stat.S_ISDIR(info.st_mode):
        return "a directory, where a file is expected"
    if not os.access(path, os.R_OK):
        return "not readable (permission denied): fix its permissions or point the config at a readable copy"
    return None


def check_readable(path: str | os.PathLike[str], what: str = "") -> None:
    """Raise the DataValidationError of `unreadable_reason` (with `what` added, e.g. which files a folder needs)."""
    reason = unreadable_reason(path)
    if reason is not None:
        raise DataValidationError(path, None, None, reason + (f" ({what})" if what else ""))
