"""The process's console streams, redacted: no secret reaches stdout or stderr on any path, crashes included.

The log handlers redact every record (`lmrec.runtime.redaction.RedactingFilter`), but not everything on the
console is a log record: Hydra writes "Error executing job with overrides: [...]" (the command line as typed, a
key passed as `'+logger.wandb.settings={api_key:...}'` included) straight to stderr when a job raises, Python
prints tracebacks there, and libraries print. So each entry point wraps `sys.stdout` and `sys.stderr` before
Hydra starts: every write passes through `redact_text`, which knows the secret values of the command line
(remembered here, before anything is parsed), of secret-named environment variables, and the `key=value` forms.
A job's stderr on SLURM is this same stream, written to its `.out` file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from lmrec.config.secrets import redact_text, remember_secrets
from lmrec.runtime.redaction import override_secrets


class RedactingStream:
    """A text stream whose writes are redacted; everything else (isatty, fileno, encoding) is the wrapped one's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(redact_text(text))
        return len(text)  # what the caller asked to write, as TextIO.write returns

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def protect_console(argv: Sequence[str]) -> None:
    """Remember the secrets typed in `argv` (Hydra overrides) and redact both console streams from now on."""
    remember_secrets(override_secrets([a for a in argv if not a.startswith("-")]))
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)
