"""Cache entries that prove their content: a manifest of SHA-256 digests, written last, checked on every read.

Every cache lmrec keeps (processed tables, item embeddings, frozen-layer states) is read by many later runs; a
flipped byte on disk must be found before it reaches a model, and an entry whose write was interrupted must be
rebuilt rather than read (or re-built every run while it sits there). One manifest per entry does both: it lists
every file's size and SHA-256, and it is written after them, so "the manifest is there and matches" means "the
whole entry was written and is intact". Hashing on read (OpenSSL SHA-256, about 2 GB/s on one core) costs about a
twentieth of parsing the same Parquet, so every read checks every byte; docs/reliability.md has the figures.

The manifest checks itself too: it holds the SHA-256 of its own file list and must be byte-identical to its
canonical rendering, so any single changed byte in it (a digit of a digest, a key, even whitespace) fails.
A folder entry keeps it inside (`<entry>/manifest.json`); a single-file entry beside it (`<file>.sha256.json`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from lmrec.atomic import atomic_path, remove_stale_temps
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SIDECAR_SUFFIX = ".sha256.json"
MANIFEST_VERSION = 1


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _render(files: dict[str, dict]) -> str:
    listing = json.dumps(files, sort_keys=True)
    body = {
        "files": files,
        "manifest_sha256": hashlib.sha256(listing.encode()).hexdigest(),
        "version": MANIFEST_VERSION,
    }
    return json.dumps(body, sort_keys=True, indent=1) + "\n"


def write_manifest(manifest: Path, files: Iterable[Path]) -> None:
    """Record the size and SHA-256 of `files` (siblings of `manifest`, or inside its folder) in `manifest`."""
    manifest = Path(manifest)
    listing = {
        str(Path(f).relative_to(manifest.parent)): {"sha256": file_sha256(Path(f)), "size": Path(f).stat().st_size}
        for f in files
    }
    with atomic_path(manifest) as tmp:
        tmp.write_text(_render(listing))


def check_manifest(manifest: Path) -> str | None:
    """None when `manifest` is intact and every file it lists has its recorded size and SHA-256; else why not,
    naming the file that failed."""
    manifest = Path(manifest)
    if not manifest.is_file():
        return f"{manifest} is missing (an interrupted write, or an entry from an older lmrec)"
    raw = manifest.read_bytes()
    try:
        files = json.loads(raw)["files"]
        intact = _render(files).encode() == raw
    except (ValueError, KeyError, TypeError, AttributeError):
        intact = False
    if not intact:
        return f"{manifest} is damaged"
    for name, expected in files.items():
        path = manifest.parent / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != expected["size"] or file_sha256(path) != expected["sha256"]:
            return f"{path} does not match its SHA-256 in {manifest.name}"
    return None


def seal_dir(folder: Path) -> None:
    """Write `folder/manifest.json` over every other file in `folder`: call it last, before publishing."""
    folder = Path(folder)
    write_manifest(folder / MANIFEST, sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST))


def sidecar(path: Path) -> Path:
    return Path(path).with_name(Path(path).name + SIDECAR_SUFFIX)


def seal_file(path: Path) -> None:
    """Write the manifest of a single-file entry beside it, after the file itself is in place."""
    write_manifest(sidecar(path), [path])


class _AnnouncedLock(FileLock):
    """A FileLock that says so when it has to wait: a job blocked on another job's cache build would otherwise
    sit silent for minutes."""

    def acquire(self, timeout: float | None = None, poll_interval: float = 0.05, **kwargs: Any) -> Any:
        try:
            return super().acquire(timeout=0, poll_interval=poll_interval)
        except Timeout:
            log.info("waiting for %s: another job holds %s while it builds or checks that entry", self._entry, self)
        return super().acquire(timeout=timeout, poll_interval=poll_interval, **kwargs)

    def __str__(self) -> str:
        return str(self.lock_file)


def entry_lock(entry: Path) -> FileLock:
    """The lock one job holds while it checks, reads or builds `entry`: a second job building the same entry
    waits (and says so), then reads what the first one wrote. The lock file is hidden (`.<entry>.lock`) and stays:
    removing it while another job waits on it would let a third job take a different lock on a new file of the same
    name."""
    entry = Path(entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    lock = _AnnouncedLock(str(entry.parent / f".{entry.name}.lock"))
    lock._entry = entry
    return lock


def verified_entry(entry: Path, what: str, single_file: bool = False) -> bool:
    """Whether `entry` exists, is complete and intact. A damaged or incomplete entry is removed, with a warning
    naming the file that failed, so the caller rebuilds it. Hold `entry_lock(entry)` around this and the build.

    Also removes orphaned temporaries of killed writes beside the entry (`lmrec.atomic.remove_stale_temps`).
    """
    entry = Path(entry)
    remove_stale_temps(entry.parent)
    manifest = sidecar(entry) if single_file else entry / MANIFEST
    if not entry.exists():
        if single_file:  # a manifest without its file: the file was removed
            manifest.unlink(missing_ok=True)
        return False
    problem = check_manifest(manifest)
    if problem is None:
        return True
    log.warning("%s cache %s fails its content check: %s; removing it and rebuilding", what, entry, problem)
    remove_entry(entry, single_file)
    return False


def remove_entry(entry: Path, single_file: bool = False) -> None:
    if single_file:
        Path(entry).unlink(missing_ok=True)
        sidecar(entry).unlink(missing_ok=True)
    else:
        shutil.rmtree(entry, ignore_errors=True)


def check_cache_dir(path: str | Path | None, key: str = "paths.cache_dir") -> None:
    """Refuse, before any logger starts or file is read, a cache folder lmrec cannot write: a file in its place,
    a read-only or permission-denied folder (or, for one not made yet, the folder it would be made in). Found now,
    it is one line naming the folder; found while the first entry is written, it would be a traceback after W&B
    had started. Nothing is created: a run refused later for another reason leaves no cache folder behind."""
    if not path:
        return
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{key}={folder} is a file, not a folder; point {key} (or LMREC_CACHE_DIR) at a folder")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{key}={folder}: {existing} is a file, so the folder cannot be made there")
    try:  # a real write: permission bits alone miss read-only mounts, and root passes every os.access check
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".lmrec-write-check-"):
            pass
    except OSError as err:
        raise ConfigError(
            f"{key}={folder} cannot be written ({err.strerror or err}); point {key} (or LMREC_CACHE_DIR) at a "
            "writable folder"
        ) from None
