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
