"""Fetch an official dataset release for users who have a network, and make it verifiable from then on.

Each source declares its releases (`Source.releases`: name -> official URL); a new source's releases are found by
scanning `lmrec.data.sources`, so adding one needs no edit here. A download can never leave a half-written or
unverified dataset behind: the archive is fetched and extracted inside a temporary directory next to ``dest``,
checked, and only then renamed into place in one atomic step. How it is checked depends on what we know:

- packaged digests (`lmrec/data/known_checksums/<name>.sha256`, e.g. ml-latest-small, whose files lmrec bundles):
  every extracted file must match its SHA-256, and that list becomes the folder's ``SHA256SUMS``;
- otherwise the MD5 digest that GroupLens publishes next to each archive (``<archive URL>.md5``, fetched from the
  same server, or given as ``md5=``) must match the archive's bytes; then the SHA-256 of every extracted file is
  written to ``SHA256SUMS``, which every later load verifies (``data.verify_checksums``). This catches a truncated
  or corrupted transfer and pins the files from the first download on; it cannot vouch for the server itself (the
  digest comes from it) and MD5 does not resist deliberate collisions. The packaged SHA-256 lists are the stronger
  check, and a release gains one once someone with a network records it.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import pkgutil
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from lmrec.data.io.checksums import ChecksumError, parse_sha256sums, sha256_file, verify_checksums
from lmrec.errors import ConfigError, InputError, MissingInputError

__all__ = [
    "ArchiveDigestError",
    "DownloadError",
    "download_release",
    "has_packaged_checksums",
    "known_releases",
    "packaged_checksums",
    "parse_md5",
]

logger = logging.getLogger(__name__)


class DownloadError(InputError):
    """A download cannot be placed where it was asked to go, or its archive is not a dataset release."""


class ArchiveDigestError(ChecksumError):
    """The downloaded archive's MD5 differs from the digest published for it."""

    def __str__(self) -> str:
        return (
            f"{os.fspath(self.path)}: md5 mismatch: expected {self.expected}, got {self.actual} "
            "(the download was truncated or corrupted, or the archive changed on the server)"
        )


def known_releases() -> dict[str, str]:
    """Every release name -> official URL that a module of `lmrec.data.sources` declares (each can be verified:
    by packaged SHA-256 digests, or by the MD5 its server publishes next to the archive)."""
    import lmrec.data.sources as sources
    from lmrec.data.sources.base import Source

    releases: dict[str, str] = {}
    for info in pkgutil.iter_modules(sources.__path__):
        module = importlib.import_module(f"{sources.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Source) and value.__module__ == module.__name__:
                releases.update(value.releases)
    return releases


def has_packaged_checksums(name: str) -> bool:
    """Whether lmrec ships the SHA-256 digests of the release's files."""
    return resources.files("lmrec.data").joinpath("known_checksums").joinpath(f"{name}.sha256").is_file()


_SUMS_FILE = "SHA256SUMS"
_CHUNK = 1 << 20
_TIMEOUT_S = 60


def packaged_checksums(name: str) -> dict[str, str]:
    """Return the ``{filename: sha256}`` shipped in ``lmrec/data/known_checksums/<name>.sha256``."""
    # One component per joinpath() call: Python 3.10's Traversable takes a single child.
    resource = resources.files("lmrec.data").joinpath("known_checksums").joinpath(f"{name}.sha256")
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingInputError(
            f"no packaged checksums for {name!r} (lmrec/data/known_checksums/{name}.sha256); "
            "is the package data installed?"
        ) from None
    return parse_sha256sums(text, f"lmrec/data/known_checksums/{name}.sha256")


def download_release(name: str, dest: Path, *, url: str | None = None, md5: str | None = None) -> Path:
    """Download, verify and unpack the release ``name`` into the directory ``dest``.

    Args:
        name: a key of :func:`known_releases`.
        dest: the dataset directory to create, e.g. ``data/ml-1m``. If it already exists and its files match its
            ``SHA256SUMS`` (and the packaged digests, where they exist) it is returned without downloading.
        url: download from here instead of the official address (a mirror, or a ``file://`` URL in tests); the
            MD5 is then read from ``<url>.md5``.
        md5: the archive's expected MD5 (hex), instead of fetching the published one; ignored for releases with
            packaged SHA-256 digests, which are checked file by file.

    Returns:
        ``dest``, holding the verified files plus a ``SHA256SUMS`` manifest that every source verifies on each
        load (``data.verify_checksums``).

    Raises:
        ConfigError: ``name`` is unknown.
        DownloadError: no MD5 is published for the archive, an archive member would extract outside ``dest``, or
            ``dest`` exists but does not hold this verified dataset.
        ChecksumError: a downloaded file (ArchiveDigestError: the archive) differs; nothing is left behind.
        urllib.error.URLError, zipfile.BadZipFile: the download failed or is not a zip.
    """
    releases = known_releases()
    if name not in releases:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(sorted(releases))}")
    expected = packaged_checksums(name) if has_packaged_checksums(name) else None
    dest = Path(dest)
    if dest.exists():
        if _is_verified_copy(dest, expected):
            logger.info("%s already holds verified %s; not downloading", dest, name)
            return dest
        raise DownloadError(
            f"{dest} exists but does not hold a verified copy of {name} (its files must match "
            f"{'the packaged checksums' if expected else dest / _SUMS_FILE}); remove it or choose another destination"
        )
    source = url or releases[name]
    archive_md5 = None if expected is not None else (md5.strip().lower() if md5 else published_md5(source))
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as dest, hence same filesystem, so the final rename is atomic.
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        archive = staging / "download.zip"
        actual_md5 = _fetch(source, archive, label=name)
        if archive_md5 is not None and actual_md5 != archive_md5:
            raise ArchiveDigestError(source, archive_md5, actual_md5)
        extracted = _extract(archive, staging / "extract")
        archive.unlink()
        if expected is not None:
            _check_packaged(extracted, expected, source)
        else:
            files = sorted(p.relative_to(extracted).as_posix() for p in extracted.rglob("*") if p.is_file())
            sums = {member: sha256_file(extracted / member) for member in files}
            (extracted / _SUMS_FILE).write_text("".join(f"{d}  {m}\n" for m, d in sums.items()), encoding="utf-8")
        os.rename(extracted, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    how = "packaged SHA-256 checksums" if expected is not None else f"archive MD5 {archive_md5}"
    logger.info("downloaded %s from %s to %s (verified by %s)", name, source, dest, how)
    return dest


def _check_packaged(extracted: Path, expected: dict[str, str], source: str) -> None:
    """Write the packaged digests as the folder's manifest and verify every file against them."""
    (extracted / _SUMS_FILE).write_text(
        "".join(f"{digest}  {fname}\n" for fname, digest in sorted(expected.items())), encoding="utf-8"
    )
    try:  # verify before anything becomes visible at dest
        verify_checksums(extracted, _SUMS_FILE)
    except ChecksumError as exc:
        member = Path(exc.path).relative_to(extracted).as_posix()
        raise ChecksumError(f"{member} in {source}", exc.expected, exc.actual) from None
    unlisted = sorted(
        path.relative_to(extracted).as_posix()
        for path in extracted.rglob("*")
        if path.is_file() and path.name != _SUMS_FILE
    )
    unlisted = [member for member in unlisted if member not in expected]
    if unlisted:
        logger.warning("%s: archive has files without packaged checksums: %s", source, unlisted)


# "MD5 (ml-1m.zip) = <hex>" (BSD md5), "<hex>  ml-1m.zip" or "<hex> *ml-1m.zip" (md5sum), or a bare "<hex>".
_MD5_LINE = re.compile(
    r"MD5 \((?P<bsd>[^)]+)\) = (?P<bsd_hex>[0-9a-fA-F]{32})|(?P<hex>[0-9a-fA-F]{32})(?:\s+\*?(?P<name>\S+))?"
)


def parse_md5(text: str, archive: str, origin: str) -> str:
    """The MD5 of ``archive`` from a published ``.md5`` file: ``MD5 (name) = hex`` (BSD ``md5``), ``hex  name``
    (``md5sum``) or a bare ``hex``. A file naming another archive is refused, never guessed around."""
    for line in text.splitlines():
        match = _MD5_LINE.fullmatch(line.strip())
        if match is None:
            continue
        named = match["bsd"] or match["name"]
        if named is not None and PurePosixPath(named).name != archive:
            raise DownloadError(f"{origin}: the MD5 file is for {named!r}, not {archive!r}")
        return (match["bsd_hex"] or match["hex"]).lower()
    raise DownloadError(
        f"{origin}: no MD5 digest found (expected 'MD5 ({archive}) = <32 hex>' or '<32 hex>  {archive}')"
    )


def published_md5(url: str) -> str:
    """The MD5 the server publishes for the archive at ``url``, read from ``<url>.md5``."""
    md5_url = url + ".md5"
    try:
        with open_url(md5_url) as response:
            text = response.read(1 << 16).decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(
            f"cannot read the published MD5 {md5_url} ({err}); pass md5=<hex> (lmrec-download --md5) if you have "
            "the archive's digest from another source"
        ) from None
    return parse_md5(text, PurePosixPath(urllib.parse.urlsplit(url).path).name, md5_url)


def open_url(url: str) -> Any:
    """Open ``url`` for reading: urllib's response (``read``, ``headers``); the one place the network is touched,
    so tests replace it."""
    return urllib.request.urlopen(url, timeout=_TIMEOUT_S)


def _is_verified_copy(dest: Path, expected: dict[str, str] | None) -> bool:
    """Whether ``dest`` holds exactly the packaged release (its own manifest is not trusted), or, without packaged
    digests, whether every file its ``SHA256SUMS`` (written by the first download) lists still matches."""
    if not (dest / _SUMS_FILE).is_file():
        return False
    try:
        if expected is None:
            return bool(verify_checksums(dest, _SUMS_FILE))
        return verify_checksums(dest, _SUMS_FILE, files=expected) == expected
    except (ValueError, OSError):
        return False


def _fetch(url: str, target: Path, *, label: str) -> str:
    """Stream ``url`` to ``target``, with a progress bar when the size is known; return the bytes' MD5."""
    digest = hashlib.md5(usedforsecurity=False)
    with open_url(url) as response, open(target, "wb") as out:
        length = response.headers.get("Content-Length")
        if not length:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
            return digest.hexdigest()
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task(f"Downloading {label}", total=int(length))
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                progress.advance(task, len(chunk))
    return digest.hexdigest()


def _extract(archive: Path, target: Path) -> Path:
    """Extract ``archive`` into ``target``; return the dataset directory inside it.

    GroupLens archives wrap the files in one top-level folder (``ml-latest-small/``);
    archives without that folder are accepted too. Member names that would escape
    ``target`` are refused rather than sanitised, since such an archive is not ours.
    """
    with zipfile.ZipFile(archive) as zf:
        for member in zf.namelist():
            parts = PurePosixPath(member.replace("\\", "/")).parts
            if member.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")):
                raise DownloadError(f"{archive}: refusing unsafe member path {member!r}")
        zf.extractall(target)
    entries = [p for p in target.iterdir() if p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return target
