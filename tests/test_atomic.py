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
