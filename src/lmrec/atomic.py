"""Write files so that readers see the whole file or none of it: write a temporary sibling, then rename.

Caches and run files are read by later runs and by other jobs of a sweep; a crash half-way through a write must
never leave a truncated file that looks valid.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed to `target`, on error removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
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
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
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
