"""Fetch an official dataset release for users who have a network.

Each source declares its releases (`Source.releases`: name -> official URL) and the package ships each release's
SHA-256 digests in `lmrec/data/known_checksums/<name>.sha256`; a new source's releases are found by scanning
`lmrec.data.sources`, so adding one needs no edit here. The repository bundles ml-latest-small, so nothing here
runs in tests against the real server. What matters is that a download can never leave a half-written or unverified
dataset behind: the archive is fetched and extracted inside a temporary directory next to
``dest``, every file is checked against the digests shipped with this package (GroupLens
publishes no checksums, and "ml-latest" releases change in place), and only then is the
directory renamed into place in one atomic step.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import shutil
import tempfile
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path, PurePosixPath

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from lmrec.data.io.checksums import ChecksumError, parse_sha256sums, verify_checksums
from lmrec.errors import ConfigError, InputError, MissingInputError

__all__ = ["DownloadError", "download_release", "known_releases", "packaged_checksums"]

logger = logging.getLogger(__name__)


class DownloadError(InputError):
    """A download cannot be placed where it was asked to go, or its archive is not a dataset release."""


def known_releases() -> dict[str, str]:
    """Every release name -> official URL that a module of `lmrec.data.sources` declares and whose checksums ship
    with lmrec (a release nothing can verify is not offered)."""
    import lmrec.data.sources as sources
    from lmrec.data.sources.base import Source

    releases: dict[str, str] = {}
    for info in pkgutil.iter_modules(sources.__path__):
        module = importlib.import_module(f"{sources.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Source) and value.__module__ == module.__name__:
                releases.update(value.releases)
    checksums = resources.files("lmrec.data").joinpath("known_checksums")
    return {name: url for name, url in releases.items() if checksums.joinpath(f"{name}.sha256").is_file()}


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


def download_release(name: str, dest: Path, *, url: str | None = None) -> Path:
    """Download, verify and unpack the release ``name`` into the directory ``dest``.

    Args:
        name: a key of :func:`known_releases`; it selects the packaged checksums, so an
            unknown name is refused even with ``url`` (nothing could be verified).
        dest: the dataset directory to create, e.g. ``data/ml-latest-small``. If it already
            exists and matches the packaged checksums it is returned without downloading.
        url: download from here instead of the official address (a mirror, or a
            ``file://`` URL in tests).

    Returns:
        ``dest``, holding the verified files plus a ``SHA256SUMS`` manifest that
        every source verifies on each load (``data.verify_checksums``).

    Raises:
        ConfigError: ``name`` is unknown.
        DownloadError: an archive member would extract outside ``dest``, or ``dest`` exists but does not hold
            this verified dataset.
        ChecksumError: a downloaded file is missing or differs; nothing is left behind.
        urllib.error.URLError, zipfile.BadZipFile: the download failed or is not a zip.
    """
    releases = known_releases()
    if name not in releases:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(sorted(releases))}")
    expected = packaged_checksums(name)
    dest = Path(dest)
    if dest.exists():
        if _is_verified_copy(dest, expected):
            logger.info("%s already holds verified %s; not downloading", dest, name)
            return dest
        raise DownloadError(
            f"{dest} exists but does not match the packaged checksums of {name}; "
            "remove it or choose another destination"
        )
    source = url or releases[name]
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as dest, hence same filesystem, so the final rename is atomic.
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        archive = staging / "download.zip"
        _fetch(source, archive, label=name)
        extracted = _extract(archive, staging / "extract")
        archive.unlink()
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
        os.rename(extracted, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("downloaded %s from %s to %s (checksums verified)", name, source, dest)
    return dest


def _is_verified_copy(dest: Path, expected: dict[str, str]) -> bool:
    """Whether ``dest`` holds exactly the packaged release (its own manifest is not trusted)."""
    if not (dest / _SUMS_FILE).is_file():
        return False
    try:
        return verify_checksums(dest, _SUMS_FILE, files=expected) == expected
    except (ValueError, OSError):
        return False


def _fetch(url: str, target: Path, *, label: str) -> None:
    """Stream ``url`` to ``target``, with a progress bar when the size is known."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(target, "wb") as out:
        length = response.headers.get("Content-Length")
        if not length:
            shutil.copyfileobj(response, out, _CHUNK)
            return
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
                progress.advance(task, len(chunk))


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
