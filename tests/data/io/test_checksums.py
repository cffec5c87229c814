"""SHA256SUMS parsing and verification: the guard that experiments ran on the intended bytes."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest

import lmrec.data.io.checksums as checksums
from lmrec.data.io.checksums import ChecksumError, read_sha256sums, sha256_file, verify_checksums
from lmrec.data.io.errors import DataValidationError
from tests.conftest import BUNDLED_DATA

BUNDLED = BUNDLED_DATA


def _write_dataset(root: Path, files: dict[str, bytes]) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        sums[name] = hashlib.sha256(data).hexdigest()
    (root / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in sums.items()), encoding="utf-8")
    return sums


def test_sha256_file_streams_large_files(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MiB: spans several 1 MiB chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_sha256_file_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path) == hashlib.sha256(b"").hexdigest()


def test_read_sha256sums_text_and_binary_mode(tmp_path: Path) -> None:
    a, b = "a" * 64, "B" * 64
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_text(f"# comment\n{a}  one.csv\n\n{b} *two words.csv\n", encoding="utf-8")
    assert read_sha256sums(manifest) == {"one.csv": a, "two words.csv": b.lower()}


def test_read_sha256sums_bundled_manifest() -> None:
    sums = read_sha256sums(BUNDLED / "SHA256SUMS")
    assert set(sums) == {"README.txt", "links.csv", "movies.csv", "ratings.csv", "tags.csv"}


@pytest.mark.parametrize(
    "bad_line",
    ["deadbeef  short.csv", "x" * 64 + "  nothex.csv", "a" * 64 + "nospace.csv", "a" * 64],
)
def test_read_sha256sums_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str) -> None:
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_text(f"{'a' * 64}  ok.csv\n{bad_line}\n", encoding="utf-8")
    with pytest.raises(DataValidationError) as info:
        read_sha256sums(manifest)
    assert info.value.line == 2
    assert f"{manifest}:2:" in str(info.value)


def test_read_sha256sums_conflicting_duplicate(tmp_path: Path) -> None:
    manifest = tmp_path / "SHA256SUMS"
    manifest.write_text(f"{'a' * 64}  x.csv\n{'b' * 64}  x.csv\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="listed twice"):
        read_sha256sums(manifest)


def test_verify_bundled_dataset_returns_all_digests() -> None:
    digests = verify_checksums(BUNDLED)
    assert digests == read_sha256sums(BUNDLED / "SHA256SUMS")


def test_verify_subset_hashes_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sums = _write_dataset(tmp_path, {"a.csv": b"a\n", "b.csv": b"b\n", "c.csv": b"c\n"})
    calls: list[Path] = []
    real = checksums.sha256_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(checksums, "sha256_file", counting)
    digests = verify_checksums(tmp_path, files=["a.csv", "c.csv", "a.csv"])
    assert digests == {"a.csv": sums["a.csv"], "c.csv": sums["c.csv"]}
    assert sorted(p.name for p in calls) == ["a.csv", "c.csv"]


def test_verify_mismatch_names_file_expected_and_actual(tmp_path: Path) -> None:
    sums = _write_dataset(tmp_path, {"ratings.csv": b"userId\n1\n"})
    (tmp_path / "ratings.csv").write_bytes(b"userId\n2\n")
    actual = hashlib.sha256(b"userId\n2\n").hexdigest()
    with pytest.raises(ChecksumError) as info:
        verify_checksums(tmp_path)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.expected == sums["ratings.csv"] and err.actual == actual
    message = str(err)
    assert "ratings.csv" in message and sums["ratings.csv"] in message and actual in message


def test_verify_missing_listed_file(tmp_path: Path) -> None:
    _write_dataset(tmp_path, {"ratings.csv": b"x"})
    (tmp_path / "ratings.csv").unlink()
    with pytest.raises(ChecksumError, match="missing") as info:
        verify_checksums(tmp_path)
    assert info.value.actual is None


def test_verify_unlisted_file_requested(tmp_path: Path) -> None:
    _write_dataset(tmp_path, {"ratings.csv": b"x"})
    with pytest.raises(ValueError, match="no checksum entry for 'tags.csv'"):
        verify_checksums(tmp_path, files=["tags.csv"])


def test_verify_custom_manifest_name(tmp_path: Path) -> None:
    sums = _write_dataset(tmp_path, {"a.csv": b"a"})
    (tmp_path / "SHA256SUMS").rename(tmp_path / "sums.txt")
    assert verify_checksums(tmp_path, sums_file="sums.txt") == sums


def test_errors_survive_pickling() -> None:
    """Worker processes (e.g. DataLoader workers) pass exceptions back pickled."""
    err = pickle.loads(pickle.dumps(ChecksumError("f.csv", "a" * 64, "b" * 64)))
    assert (err.path, err.expected, err.actual) == ("f.csv", "a" * 64, "b" * 64)
    dve = pickle.loads(pickle.dumps(DataValidationError("r.csv", 3, "rating", "bad")))
    assert str(dve) == "r.csv:3: column 'rating': bad"
