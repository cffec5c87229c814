"""Atomic writes: readers see a whole file or folder, or none of it."""

from __future__ import annotations


def test_concurrent_builders_of_one_cache_entry_both_succeed(tmp_path):
    from lmrec.atomic import publish_dir

    target = tmp_path / "entry"
    with publish_dir(target) as slow:  # both are built before either publishes
        (slow / "done").write_text("slow")
        with publish_dir(target) as fast:
            (fast / "done").write_text("fast")
        assert (target / "done").read_text() == "fast"
    assert (target / "done").read_text() == "fast"  # the first to publish wins; the later copy is discarded
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_a_failed_write_leaves_no_file(tmp_path):
    import pytest

    from lmrec.atomic import atomic_path

    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def _killed_writer(folder, kind: str) -> None:
    """A process that dies (os._exit: no cleanup runs) half-way through an atomic write into `folder`."""
    import subprocess
    import sys

    code = (
        "import os, sys; from pathlib import Path; from lmrec.atomic import atomic_path, publish_dir\n"
        f"folder = Path(sys.argv[1])\n"
        f"if {kind!r} == 'dir':\n"
        "    with publish_dir(folder / 'entry') as tmp:\n"
        "        (tmp / 'half.parquet').write_text('half'); os._exit(9)\n"
        "with atomic_path(folder / 'file.bin') as tmp:\n"
        "    tmp.write_text('half'); os._exit(9)\n"
    )
    assert subprocess.run([sys.executable, "-c", code, str(folder)]).returncode == 9


def _age(path, seconds: float) -> None:
    import os
    import time

    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (time.time() - seconds, time.time() - seconds))


def test_temporaries_of_killed_writes_are_removed_once_idle_and_live_ones_kept(tmp_path):
    import os

    from lmrec.atomic import ORPHAN_GRACE_S, STALE_AGE_S, atomic_path, remove_stale_temps

    _killed_writer(tmp_path, "dir")
    _killed_writer(tmp_path, "file")
    orphans = sorted(p for p in tmp_path.iterdir() if p.name.endswith(".tmp"))
    assert [p.name.split(".")[1] for p in orphans] == ["entry", "file"] and orphans[0].is_dir()
    assert remove_stale_temps(tmp_path) == []  # just written: within the grace period
    for path in orphans:
        _age(path, ORPHAN_GRACE_S + 5)
    legacy = tmp_path / ".old.safetensors.k2j4x9q1.tmp"  # an older lmrec's name: no owner, so only age counts
    legacy.write_text("x")
    _age(legacy, ORPHAN_GRACE_S + 5)
    (tmp_path / ".entry.lock").write_text("")  # not a temporary
    with atomic_path(tmp_path / "live.json") as live:  # this (live) process's write, idle for two days
        live.write_text("{}")
        _age(live, 2 * STALE_AGE_S)
        assert sorted(remove_stale_temps(tmp_path)) == orphans
        assert live.exists() and legacy.exists()
        _age(legacy, STALE_AGE_S + 5)
        assert remove_stale_temps(tmp_path) == [legacy]
    assert sorted(os.listdir(tmp_path)) == [".entry.lock", "live.json"]


def test_a_writer_from_another_host_is_given_the_long_age(tmp_path):
    from lmrec.atomic import ORPHAN_GRACE_S, STALE_AGE_S, remove_stale_temps

    other = tmp_path / ".entry.1@some-other-host.abcd1234.tmp"  # pid 1 there says nothing about pid 1 here
    other.mkdir()
    _age(other, 10 * ORPHAN_GRACE_S)
    assert remove_stale_temps(tmp_path) == [] and other.exists()
    _age(other, STALE_AGE_S + 5)
    assert remove_stale_temps(tmp_path) == [other] and not other.exists()
