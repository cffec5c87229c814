"""Write files so that readers see the whole file or none of it: write a temporary sibling, then rename.

Caches and run files are read by later runs and by other jobs of a sweep; a crash half-way through a write must
never leave a truncated file that looks valid.

A killed write leaves its temporary sibling behind (`.<name>.<pid>@<host>.<random>.tmp`). The name carries the
writer's process id and host, so `remove_stale_temps` can tell an orphan from a write still in progress without
any lock, for every writer in this module (cache entries and run files alike): see its docstring.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
#: A temporary whose writer is gone (same host, pid not running) is removed once it has been idle this long.
ORPHAN_GRACE_S = 60.0
#: Any temporary idle this long is removed: one from another host, or from a writer that predates the pid tag.
STALE_AGE_S = 24 * 3600.0
_OWNER = re.compile(r"\.(\d+)@([A-Za-z0-9-]+)\.[^.]*\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}@{_host()}."


@contextmanager
def atomic_path(target: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed to `target`, on error removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_prefix(target), suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def publish_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it becomes `target` unless `target` already exists.

    For content-addressed cache entries: when two jobs build the same entry at once, the first to publish wins
    and the other's identical copy is discarded. A published entry is never deleted under a reader's feet.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=_prefix(target), suffix=TEMP_SUFFIX))
    try:
        yield tmp
        try:
            os.replace(tmp, target)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def _idle_seconds(path: Path, now: float) -> float:
    """Seconds since anything in `path` was last written: a file being written keeps its mtime fresh, a folder
    being filled has fresh files in it, so a live writer's temporary never looks idle for long."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            try:
                newest = max(newest, child.lstat().st_mtime)
            except FileNotFoundError:
                continue
    return now - newest


def is_orphan(path: Path, now: float | None = None) -> bool:
    """Whether a temporary sibling was left by a write that can no longer finish.

    Why the pid in the name rather than the cache's lock or an age alone: not every writer holds a lock (run
    files, partial parts), and an age threshold alone must be long (a slow disk, a stalled job) so orphans would
    stay for a day. The name tells who wrote it: a temporary of a process on this host that is still running is
    never removed, however old; one whose process is gone is an orphan once idle for `ORPHAN_GRACE_S` (the grace
    covers a container that shares the host name but not the pid namespace, whose live writer we cannot see: a
    live writer's temporary is never idle that long, since writing refreshes its mtime). A temporary from another
    host, or one named by an older lmrec, is removed after `STALE_AGE_S` of idleness. A reused pid keeps an
    orphan: the safe direction.
    """
    now = time.time() if now is None else now
    try:
        idle = _idle_seconds(path, now)
    except FileNotFoundError:
        return False
    owner = _OWNER.search(path.name)
    if owner and owner.group(2) == _host():
        return _process_gone(int(owner.group(1))) and idle >= ORPHAN_GRACE_S
    return idle >= STALE_AGE_S


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the orphaned temporaries (`is_orphan`) directly in `folder`; returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        if not (path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)) or not is_orphan(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
        log.info("removed %s, left by an interrupted write", path)
    return removed
