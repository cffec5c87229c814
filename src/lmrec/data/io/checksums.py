"""SHA-256 checksums for raw dataset files.

Experiments are only comparable if they ran on the same bytes, so dataset directories
ship a ``SHA256SUMS`` manifest (the format written by ``sha256sum``) and loaders verify
it before parsing. The digests double as the fingerprint of a run's inputs, which is why
:func:`verify_checksums` returns them: callers record them instead of hashing again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from lmrec.data.io.errors import DataValidationError, check_readable
from lmrec.errors import InputError

__all__ = [
    "ChecksumError",
    "file_digests",
    "parse_sha256sums",
    "read_sha256sums",
    "sha256_file",
    "verify_checksums",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # 1 MiB: large enough to keep hashing I/O-bound, small enough to stream any file.

# "<64 hex>  name" (text mode) or "<64 hex> *name" (binary mode), as written by sha256sum.
_SUMS_LINE = re.compile(r"(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>.+)")


class ChecksumError(InputError, ValueError):
    """A file does not match the digest its manifest records (or is missing).

    Attributes:
        path: the file that was checked.
        expected: the digest from the manifest.
        actual: the digest of the file on disk, or ``None`` when the file is missing.
    """

    def __init__(self, path: str | os.PathLike[str], expected: str, actual: str | None) -> None:
        super().__init__(path, expected, actual)
        self.path = path
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        if self.actual is None:
            return (
                f"{os.fspath(self.path)}: file is listed in the checksum manifest but missing "
                f"(expected sha256 {self.expected})"
            )
        return (
            f"{os.fspath(self.path)}: sha256 mismatch: expected {self.expected}, got {self.actual} "
            "(the file was modified, truncated or comes from another dataset release)"
        )


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of ``path``, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; the open is what fails on a file that is not readable
    except OSError:
        check_readable(path)  # says why, naming the file: no permission, a directory, a link loop
        raise
    with fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_sha256sums(text: str, source: str | os.PathLike[str]) -> dict[str, str]:
    """Parse ``sha256sum``-format text into ``{filename: lowercase hex digest}``.

    ``source`` only names the manifest in error messages (it may be a packaged resource,
    not a file). Blank lines and ``#`` comments are skipped; anything else that is not
    ``<digest>  <name>`` is an error rather than being ignored, because a manifest that
    silently loses entries would silently stop verifying files.
    """
    sums: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SUMS_LINE.fullmatch(line)
        if match is None:
            raise DataValidationError(source, lineno, None, f"expected '<64 hex digits>  <filename>', got {raw!r}")
        name = match["name"]
        digest = match["digest"].lower()
        if name in sums and sums[name] != digest:
            raise DataValidationError(source, lineno, None, f"{name!r} is listed twice with different digests")
        sums[name] = digest
    return sums


def read_sha256sums(path: Path) -> dict[str, str]:
    """Read a ``SHA256SUMS`` manifest file; see :func:`parse_sha256sums`."""
    return parse_sha256sums(Path(path).read_text(encoding="utf-8"), path)


def verify_checksums(
    root: Path,
    sums_file: str = "SHA256SUMS",
    files: Iterable[str] | None = None,
) -> dict[str, str]:
    """Check files under ``root`` against the manifest ``root/sums_file``.

    Args:
        root: directory holding the manifest and the files it lists.
        sums_file: manifest file name inside ``root``.
        files: names to check; ``None`` checks every entry. Naming a file the manifest
            does not list is an error, since the caller asked for a guarantee we cannot give.

    Returns:
        ``{filename: digest}`` for the checked files. Each file is hashed exactly once, so
        callers should keep this mapping as the input fingerprint rather than rehash.

    Raises:
        ChecksumError: a file is missing or its digest differs from the manifest.
        DataValidationError: the manifest is malformed.
        DataValidationError: ``files`` names a file the manifest does not list (nothing vouches for it).
        FileNotFoundError: the manifest itself is missing.
    """
    root = Path(root)
    manifest = root / sums_file
    expected = read_sha256sums(manifest)
    if files is None:
        names = list(expected)
    else:
        names = list(dict.fromkeys(files))  # de-duplicate, keep order: hash each file once
        unlisted = [name for name in names if name not in expected]
        if unlisted:
            raise DataValidationError(manifest, None, None, f"no checksum entry for {', '.join(map(repr, unlisted))}")
    digests: dict[str, str] = {}
    for name in names:
        path = root / name
        if not path.is_file():
            if path.exists() or path.is_symlink():  # there, but not a readable file: say what it is
                check_readable(path)
            raise ChecksumError(path, expected[name], None)
        actual = sha256_file(path)
        if actual != expected[name]:
            raise ChecksumError(path, expected[name], actual)
        digests[name] = actual
    return digests


def file_digests(root: Path, names: Iterable[str], *, verify: bool, manifest: str = "SHA256SUMS") -> dict[str, str]:
    """``{name: sha256}`` of the files a source reads: its inputs' fingerprint, and the cache key of its tables.

    With ``verify`` the files listed in ``root/manifest`` are checked against it on the way (each file is hashed
    once). Without a manifest (user-supplied data) verification is skipped with an info line; a file the manifest
    does not list is hashed and reported, since the manifest cannot vouch for it.
    """
    root = Path(root)
    names = list(dict.fromkeys(names))
    digests: dict[str, str] = {}
    if verify:
        sums_path = root / manifest
        if sums_path.is_file():
            listed = read_sha256sums(sums_path)
            unlisted = [name for name in names if name not in listed]
            if unlisted:
                logger.warning("%s has no entry for %s; not verified", sums_path, ", ".join(unlisted))
            digests = verify_checksums(root, manifest, files=[name for name in names if name in listed])
        else:
            logger.info("%s not found; skipping checksum verification (user-supplied data)", sums_path)
    return {name: digests[name] if name in digests else sha256_file(root / name) for name in names}
