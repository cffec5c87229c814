"""Resumable encoding: the parts of an embedding matrix saved while a long encoding runs.

Encoding a large catalogue with a decoder LM on a CPU takes hours; a job killed at 90 % should not start again
from zero. Finished batches are gathered and saved every `flush_rows` texts as one part file (written atomically,
with its own content hash, and a manifest beside it covering every byte: `lmrec.cache_integrity`) in
`<entry>.partial/`; a later run with the same key loads the parts it can verify and
encodes only the rest. The folder is removed once the whole matrix is cached.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lmrec.atomic import atomic_path
from lmrec.cache_integrity import check_manifest, seal_file, sidecar

log = logging.getLogger(__name__)


def _sha256(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


class PartialEncoding:
    """The parts folder of one cache entry (`<entry>.partial/part-00000.safetensors`, ...)."""

    def __init__(self, entry: Path, flush_rows: int = 2048) -> None:
        self.folder = Path(str(entry) + ".partial")
        self.flush_rows = int(flush_rows)
        self._rows: list[int] = []
        self._vectors: list[torch.Tensor] = []

    def load(self, key: str, num_texts: int) -> dict[tuple[int, ...], torch.Tensor]:
        """Rows -> vectors of every part saved for `key`; a part that fails its check is deleted."""
        done: dict[tuple[int, ...], torch.Tensor] = {}
        if not self.folder.is_dir():
            return done
        for part in sorted(self.folder.glob("part-*.safetensors")):
            problem = check_manifest(sidecar(part)) if sidecar(part).is_file() else None  # none: an older lmrec's
            try:
                if problem is not None:
                    raise ValueError(problem)
                with safe_open(str(part), framework="pt") as handle:
                    meta = handle.metadata() or {}
                tensors = load_file(str(part))
                rows, vectors = tensors["rows"], tensors["vectors"]
                valid = (
                    meta.get("key") == key
                    and meta.get("sha256") == _sha256(rows, vectors)
                    and (rows.numel() == 0 or int(rows.max()) < num_texts)
                )
            except Exception as err:  # a torn or damaged part: encode its rows again
                valid, problem = False, str(err)
            if not valid:
                log.warning("removing unusable partial encoding %s%s", part, f" ({problem})" if problem else "")
                part.unlink(missing_ok=True)
                sidecar(part).unlink(missing_ok=True)
                continue
            done[tuple(rows.tolist())] = vectors
        return done

    def add(self, key: str, rows: list[int], vectors: torch.Tensor) -> None:
        self._rows.extend(rows)
        self._vectors.append(vectors)
        if len(self._rows) >= self.flush_rows:
            self.flush(key)

    def flush(self, key: str) -> None:
        """Save what was added since the last flush as one part."""
        if not self._rows:
            return
        rows = torch.tensor(self._rows, dtype=torch.long)
        vectors = torch.cat(self._vectors).contiguous()
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(part.stem.split("-")[1]) for part in self.folder.glob("part-*.safetensors")]
        index = max(existing, default=-1) + 1
        part = self.folder / f"part-{index:05d}.safetensors"
        with atomic_path(part) as tmp:
            save_file(
                {"rows": rows, "vectors": vectors}, str(tmp), metadata={"key": key, "sha256": _sha256(rows, vectors)}
            )
        seal_file(part)
        self._rows, self._vectors = [], []

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
