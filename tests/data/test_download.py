"""download_release against local archives: the bundled ml-latest-small (packaged SHA-256 digests) served as file://
URLs, and an ml-1m-shaped archive served at the official address by a stand-in for the network (published MD5).
A good archive lands verified and atomically; a bad one raises and leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import zipfile
from pathlib import Path

import pytest

import lmrec.data.download as download
from lmrec.data.download import (
    ArchiveDigestError,
    DownloadError,
    download_release,
    known_releases,
    packaged_checksums,
    parse_md5,
)
from lmrec.data.io.checksums import ChecksumError, read_sha256sums, verify_checksums
from lmrec.data.sources.movielens import MovieLensLatest
from lmrec.data.sources.movielens_dat import MovieLens1M, MovieLens10M
from tests.conftest import BUNDLED_DATA
from tests.data.sources.test_movielens_family import write_ml1m, write_ml10m

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
    with pytest.raises(ValueError, match="unknown dataset 'ml-999m'"):
        download_release("ml-999m", tmp_path / "ml-999m", url=good_url)


def test_existing_verified_copy_is_reused(tmp_path: Path, good_url: str) -> None:
    dest = download_release("ml-latest-small", tmp_path / "ml", url=good_url)
    # A second call must not touch the network: the URL does not exist.
    assert download_release("ml-latest-small", dest, url=(tmp_path / "absent.zip").as_uri()) == dest


def test_existing_other_directory_is_not_overwritten(tmp_path: Path, good_url: str) -> None:
    dest = tmp_path / "ml"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    with pytest.raises(
        DownloadError,
        match="does not hold a verified copy of ml-latest-small .its files must match the packaged checksums",
    ):
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


# -- releases verified by the MD5 GroupLens publishes next to each archive --------------------------------------------
OFFICIAL = "https://files.grouplens.org/datasets/movielens/"
ML1M_URL = OFFICIAL + "ml-1m.zip"


def test_every_movielens_release_is_offered_at_its_official_address() -> None:
    names = ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small")
    assert {name: known_releases()[name] for name in names} == {name: f"{OFFICIAL}{name}.zip" for name in names}


class Server:
    """Serves local bytes at URLs, in place of the network (`download.open_url`), and records what was asked."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.requested = files, []

    def __call__(self, url: str):
        self.requested.append(url)
        if url not in self.files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        response = io.BytesIO(self.files[url])
        response.headers = {"Content-Length": str(len(self.files[url]))}
        return response


def ml1m_zip(tmp_path: Path) -> bytes:
    root = write_ml1m(tmp_path / "src")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in ("movies.dat", "ratings.dat", "users.dat"):
            zf.writestr(f"ml-1m/{name}", (root / name).read_bytes())
        zf.writestr("ml-1m/README", b"SUMMARY\n")
    return buffer.getvalue()


def test_md5_release_is_verified_and_pinned_by_sha256sums(tmp_path: Path, monkeypatch) -> None:
    archive = ml1m_zip(tmp_path)
    md5 = hashlib.md5(archive).hexdigest()
    server = Server({ML1M_URL: archive, ML1M_URL + ".md5": f"MD5 (ml-1m.zip) = {md5}\n".encode()})
    monkeypatch.setattr(download, "open_url", server)
    dest = tmp_path / "data" / "ml-1m"
    assert download_release("ml-1m", dest) == dest
    assert server.requested == [ML1M_URL + ".md5", ML1M_URL]  # the digest first, from the same server
    members = ("README", "movies.dat", "ratings.dat", "users.dat")
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        written = {name: hashlib.sha256(zf.read(f"ml-1m/{name}")).hexdigest() for name in members}
    assert read_sha256sums(dest / "SHA256SUMS") == written
    assert leftovers(dest.parent) == []
    source = MovieLens1M(dest)
    assert source.digests(verify=True) == {name: written[name] for name in source.files()}
    assert len(source.read().users) == 3
    # A second call finds the verified copy and touches no network.
    monkeypatch.setattr(download, "open_url", Server({}))
    assert download_release("ml-1m", dest) == dest
    # From now on a changed file is refused on load.
    (dest / "ratings.dat").write_bytes((dest / "ratings.dat").read_bytes() + b"3::2::4::978300760\n")
    with pytest.raises(ChecksumError, match="ratings.dat: sha256 mismatch"):
        MovieLens1M(dest).digests(verify=True)
    with pytest.raises(DownloadError, match="does not hold a verified copy"):
        download_release("ml-1m", dest)


def test_wrong_md5_fails_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    archive = ml1m_zip(tmp_path)
    wrong = hashlib.md5(archive + b"x").hexdigest()
    monkeypatch.setattr(
        download, "open_url", Server({ML1M_URL: archive, ML1M_URL + ".md5": f"{wrong}  ml-1m.zip\n".encode()})
    )
    dest = tmp_path / "out" / "ml-1m"
    with pytest.raises(ArchiveDigestError) as info:
        download_release("ml-1m", dest)
    assert info.value.expected == wrong and info.value.actual == hashlib.md5(archive).hexdigest()
    assert str(info.value).startswith(f"{ML1M_URL}: md5 mismatch: expected {wrong}")
    assert not dest.exists() and leftovers(dest.parent) == []


def test_missing_md5_is_refused_unless_given(tmp_path: Path, monkeypatch) -> None:
    archive = ml1m_zip(tmp_path)
    server = Server({ML1M_URL: archive})
    monkeypatch.setattr(download, "open_url", server)
    dest = tmp_path / "ml-1m"
    with pytest.raises(DownloadError, match=r"cannot read the published MD5 .*ml-1m.zip.md5.*--md5"):
        download_release("ml-1m", dest)
    assert server.requested == [ML1M_URL + ".md5"] and not dest.exists() and leftovers(tmp_path) == []
    assert download_release("ml-1m", dest, md5=hashlib.md5(archive).hexdigest().upper()) == dest


def test_mirror_md5_comes_from_the_mirror(tmp_path: Path) -> None:
    archive = ml1m_zip(tmp_path)
    (tmp_path / "ml-1m.zip").write_bytes(archive)
    (tmp_path / "ml-1m.zip.md5").write_text(hashlib.md5(archive).hexdigest() + "\n")
    dest = download_release("ml-1m", tmp_path / "data" / "ml-1m", url=(tmp_path / "ml-1m.zip").as_uri())
    assert (
        verify_checksums(dest)["users.dat"] == hashlib.sha256((tmp_path / "src" / "users.dat").read_bytes()).hexdigest()
    )


def test_parse_md5_formats() -> None:
    digest = "0123456789abcdef0123456789ABCDEF"
    for text in (f"MD5 (ml-1m.zip) = {digest}", f"{digest}  ml-1m.zip", f"{digest} *ml-1m.zip", f"\n{digest}\n"):
        assert parse_md5(text, "ml-1m.zip", "x.md5") == digest.lower()
    with pytest.raises(DownloadError, match="the MD5 file is for 'ml-10m.zip', not 'ml-1m.zip'"):
        parse_md5(f"MD5 (ml-10m.zip) = {digest}", "ml-1m.zip", "x.md5")
    with pytest.raises(DownloadError, match="no MD5 digest found"):
        parse_md5("<html>Not Found</html>", "ml-1m.zip", "x.md5")


def test_command_line_md5_release(tmp_path: Path, monkeypatch, capsys) -> None:
    from lmrec.cli.download import main

    archive = ml1m_zip(tmp_path)
    monkeypatch.setattr(download, "open_url", Server({ML1M_URL: archive}))
    dest = tmp_path / "ml-1m"
    assert main(["ml-1m", "--dest", str(dest), "--md5", "0" * 32]) == 2
    assert "ArchiveDigestError" in capsys.readouterr().out and not dest.exists()
    assert main(["ml-1m", "--dest", str(dest), "--md5", hashlib.md5(archive).hexdigest()]) == 0
    assert f"verified (the archive's MD5) at {dest}; train on it with data=movielens_1m paths.data_dir={tmp_path}" in (
        capsys.readouterr().out
    )


def test_ml10m_archive_folder_is_renamed_to_the_release(tmp_path: Path, monkeypatch) -> None:
    root = write_ml10m(tmp_path / "src")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in ("movies.dat", "ratings.dat", "tags.dat"):
            zf.writestr(f"ml-10M100K/{name}", (root / name).read_bytes())  # the folder name GroupLens uses
    archive = buffer.getvalue()
    url = OFFICIAL + "ml-10m.zip"
    monkeypatch.setattr(
        download, "open_url", Server({url: archive, url + ".md5": hashlib.md5(archive).hexdigest().encode()})
    )
    dest = download_release("ml-10m", tmp_path / "data" / "ml-10m")
    assert sorted(p.name for p in dest.iterdir()) == ["SHA256SUMS", "movies.dat", "ratings.dat", "tags.dat"]
    assert len(MovieLens10M(dest).read().interactions) == 4
