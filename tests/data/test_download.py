"""download_release against file:// archives built from the bundled files: a good archive
lands verified and atomically; a bad one raises and leaves nothing behind."""

from __future__ import annotations

import urllib.error
import zipfile
from pathlib import Path

import pytest

from lmrec.data.download import DownloadError, download_release, known_releases, packaged_checksums
from lmrec.data.io.checksums import ChecksumError, read_sha256sums, verify_checksums
from lmrec.data.sources.movielens import MovieLensLatest
from tests.conftest import BUNDLED_DATA

BUNDLED = BUNDLED_DATA
FILES = ("README.txt", "links.csv", "movies.csv", "ratings.csv", "tags.csv")


def make_zip(
    path: Path,
    *,
    prefix: str = "ml-latest-small/",
    replace: dict[str, bytes] | None = None,
    omit: tuple[str, ...] = (),
    extra: dict[str, bytes] | None = None,
) -> str:
    """Zip the bundled files like GroupLens does (one top-level folder); return a file:// URL."""
    replace = replace or {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in FILES:
            if name not in omit:
                zf.writestr(prefix + name, replace.get(name) or (BUNDLED / name).read_bytes())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path.as_uri()


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def good_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_zip(tmp_path_factory.mktemp("zips") / "ml-latest-small.zip")


def test_packaged_checksums_match_bundled_manifest() -> None:
    assert packaged_checksums("ml-latest-small") == read_sha256sums(BUNDLED / "SHA256SUMS")
    assert known_releases()["ml-latest-small"].endswith("/ml-latest-small.zip")  # declared by MovieLensLatest


def test_download_verifies_and_installs(tmp_path: Path, good_url: str) -> None:
    dest = tmp_path / "data" / "ml-latest-small"
    assert download_release("ml-latest-small", dest, url=good_url) == dest
    assert sorted(p.name for p in dest.iterdir()) == sorted((*FILES, "SHA256SUMS"))
    assert read_sha256sums(dest / "SHA256SUMS") == packaged_checksums("ml-latest-small")
    assert verify_checksums(dest) == packaged_checksums("ml-latest-small")
    assert leftovers(dest.parent) == []
    assert len(MovieLensLatest(dest).read().items) == 9_742


def test_archive_without_top_level_folder(tmp_path: Path) -> None:
    url = make_zip(tmp_path / "flat.zip", prefix="")
    dest = download_release("ml-latest-small", tmp_path / "out", url=url)
    assert verify_checksums(dest) == packaged_checksums("ml-latest-small")


def test_corrupted_file_raises_and_leaves_nothing(tmp_path: Path) -> None:
    data = bytearray((BUNDLED / "ratings.csv").read_bytes())
    data[100] ^= 1  # flip one bit
    url = make_zip(tmp_path / "bad.zip", replace={"ratings.csv": bytes(data)})
    dest = tmp_path / "out" / "ml-latest-small"
    with pytest.raises(ChecksumError, match="ratings.csv") as info:
        download_release("ml-latest-small", dest, url=url)
    assert info.value.expected == packaged_checksums("ml-latest-small")["ratings.csv"]
    assert url in str(info.value)
    assert not dest.exists()
    assert leftovers(dest.parent) == []


def test_missing_file_in_archive_raises(tmp_path: Path) -> None:
    url = make_zip(tmp_path / "partial.zip", omit=("tags.csv",))
    dest = tmp_path / "ml-latest-small"
    with pytest.raises(ChecksumError, match="tags.csv"):
        download_release("ml-latest-small", dest, url=url)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_unsafe_member_path_is_refused(tmp_path: Path) -> None:
    url = make_zip(tmp_path / "evil.zip", extra={"../escape.txt": b"x"})
    dest = tmp_path / "ml-latest-small"
    with pytest.raises(DownloadError, match="unsafe member"):
        download_release("ml-latest-small", dest, url=url)
    assert not dest.exists() and not (tmp_path.parent / "escape.txt").exists()
    assert leftovers(tmp_path) == []


def test_unreachable_url_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "ml-latest-small"
    with pytest.raises(urllib.error.URLError):
        download_release("ml-latest-small", dest, url=(tmp_path / "absent.zip").as_uri())
    assert not dest.exists() and leftovers(tmp_path) == []


def test_unknown_dataset_is_refused(tmp_path: Path, good_url: str) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'ml-25m'"):
        download_release("ml-25m", tmp_path / "ml-25m", url=good_url)


def test_existing_verified_copy_is_reused(tmp_path: Path, good_url: str) -> None:
    dest = download_release("ml-latest-small", tmp_path / "ml", url=good_url)
    # A second call must not touch the network: the URL does not exist.
    assert download_release("ml-latest-small", dest, url=(tmp_path / "absent.zip").as_uri()) == dest


def test_existing_other_directory_is_not_overwritten(tmp_path: Path, good_url: str) -> None:
    dest = tmp_path / "ml"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="does not match the packaged checksums"):
        download_release("ml-latest-small", dest, url=good_url)
    assert (dest / "notes.txt").read_text() == "mine"


def test_command_line_downloads_and_reports_failures(tmp_path: Path, good_url: str, capsys) -> None:
    from lmrec.cli.download import main

    dest = tmp_path / "fresh" / "ml-latest-small"
    assert main(["ml-latest-small", "--dest", str(dest), "--url", good_url]) == 0
    assert f"paths.data_dir={dest.parent}" in capsys.readouterr().out
    assert verify_checksums(dest) == packaged_checksums("ml-latest-small")
    bad_url = make_zip(tmp_path / "bad.zip", replace={"ratings.csv": b"userId,movieId,rating,timestamp\n"})
    assert main(["ml-latest-small", "--dest", str(tmp_path / "other"), "--url", bad_url]) == 2
    assert "ChecksumError" in capsys.readouterr().out and not (tmp_path / "other").exists()
