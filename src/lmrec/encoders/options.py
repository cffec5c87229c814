"""Checks on encoder options that run before any model is loaded, so a typo fails in a second, not after minutes."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lmrec.config.schema import BOOL, POSITIVE, Matches, OneOf, Option, Whole, check_values
from lmrec.encoders.pooling import POOLINGS
from lmrec.encoders.resolve import EncoderFiles
from lmrec.errors import ConfigError

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")
#: `auto` is resolved by `resolve_dtype` to one of DTYPES before a model loads or a cache key is built.
DTYPE_CHOICES = (*DTYPES, "auto")
QUANTIZATIONS = ("4bit", "8bit")


@functools.cache
def native_bf16() -> bool:
    """Whether this machine computes bfloat16 matrix products in hardware: a CUDA GPU that supports it, or a CPU
    with AVX-512 BF16 or AMX (elsewhere torch emulates bf16 on the CPU, slower than float32)."""
    import torch

    if torch.cuda.is_available():
        native = bool(torch.cuda.is_bf16_supported())
        log.info("model.encoder.dtype=auto: the GPU %s bfloat16", "supports" if native else "lacks")
        return native
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: no cheap, dependable way to read the CPU's features
        return False
    flags = {word for line in cpuinfo if line.startswith("flags") for word in line.split()}
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    log.info(
        "model.encoder.dtype=auto: %s (the CPU %s avx512_bf16/amx_bf16)",
        "bfloat16" if native else "float32",
        "has" if native else "lacks",
    )
    return native


def resolve_dtype(dtype: str | None) -> str:
    """The weights' dtype for `model.encoder.dtype`: `auto` is bfloat16 where `native_bf16()`, else float32.

    Resolved where the config becomes encoder options (`encoders.build.encoder_options`), so the embedding cache
    key and the loaded model see the same concrete dtype (a bf16 and a float32 encoding are different cache
    entries); `TextEncoder` resolves it too for direct callers. Both read `native_bf16`'s one cached answer."""
    if dtype != "auto":
        return dtype or "float32"
    return "bfloat16" if native_bf16() else "float32"


#: `model.encoder`: a mapping no class is built from (TextEncoder's arguments plus the encoding pass's batch size
#: and threads), so its defaults are declared here; `conf/model/encoder/_defaults.yaml` must match them (a test).
ENCODER_OPTIONS: tuple[Option, ...] = (
    Option("revision", (Matches(r".+", "a revision name"),), nullable=True, default=None),
    Option("gguf_file", (Matches(r".+\.gguf", "a .gguf file name"),), nullable=True, default=None),
    Option("pooling", (OneOf(POOLINGS),), default="mean"),
    Option("max_length", (Whole(2),), note="tokens per item text, special tokens included", default=128),
    Option("normalize", (BOOL,), default=False),
    Option("dtype", (OneOf(DTYPE_CHOICES),), default="float32"),
    Option("quantization", (OneOf(QUANTIZATIONS),), nullable=True, default=None),
    Option("layer", (Whole(),), nullable=True, note="a hidden-layer index, -1 the last", default=None),
    Option("prompt", (Matches(r"(?s)(?:(?!\{text\}).)*\{text\}(?:(?!\{text\}).)*",
                              "a string with exactly one {text}"),), nullable=True, default=None),
    Option("append_eos", (BOOL,), nullable=True, note="null: for decoders that have one", default=None),
    Option("trust_remote_code", (BOOL,), default=False),
    Option("batch_size", (POSITIVE,), note="texts per encoder pass", default=128),
    Option("threads", (POSITIVE,), nullable=True, note="torch threads of the encoding pass", default=None),
)  # fmt: skip


#: Each `model.encoder` option's default, for code that reads a mapping where the option may be absent.
ENCODER_DEFAULTS: dict[str, Any] = {option.key: option.default for option in ENCODER_OPTIONS}


def check_encoder_options(**values: Any) -> None:
    """`model.encoder` values given to a `TextEncoder` built from Python (a config is checked before any work by
    `lmrec.config.validate`, from the same declaration), then whether the machine can quantize."""
    check_values(ENCODER_OPTIONS, values, "model.encoder")
    if values.get("quantization") is not None:
        check_quantization(values["quantization"])


def check_encoder_config(options: Mapping[str, Any]) -> None:
    """What only the encoder's files can tell about `model.encoder` (`check_text_room`), and the machine
    (`check_quantization`); the values themselves were checked with the config."""
    if options.get("quantization") is not None:
        check_quantization(options["quantization"])
    check_text_room(options)


#: Up to this many tokens, `check_text_room` loads the tokenizer to check that the text gets any of them.
SHORT_MAX_LENGTH = 32


def check_text_room(options: Mapping[str, Any]) -> None:
    """Refuse a `max_length` that the special tokens and the prompt fill, before anything is encoded.

    Every item would then be encoded from the same tokens and get the same vector, so the text tower would carry
    no information. `TextEncoder.tokenize` refuses it too, but only once the encoder has loaded, inside the
    encoding pass. The tokenizer is loaded here only when it can matter (a prompt is set, or max_length is at most
    SHORT_MAX_LENGTH), since a long default length always leaves room. An end-of-sequence token the encoder may
    append is not counted (that needs the model config), so this never refuses a length the encoder accepts.
    """
    max_length, prompt = options.get("max_length", ENCODER_DEFAULTS["max_length"]), options.get("prompt")
    if max_length > SHORT_MAX_LENGTH and not prompt:
        return
    from lmrec.encoders.loading import load_tokenizer, special_token_frame
    from lmrec.encoders.resolve import encoder_files

    tokenizer = load_tokenizer(encoder_files(options), bool(options.get("trust_remote_code")))
    head, tail = special_token_frame(tokenizer)
    parts = prompt.split("{text}") if prompt else []
    frame = len(head) + len(tail) + sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in parts if p)
    if max_length <= frame:
        what = "the special tokens and the prompt" if prompt else "the tokenizer's special tokens"
        raise ConfigError(
            f"model.encoder.max_length={max_length} leaves no token for the item text: {what} take {frame}; "
            f"expected at least {frame + 1}"
        )


def check_quantization(quantization: str) -> None:
    """4-/8-bit weights need bitsandbytes and a CUDA GPU: say so before anything is loaded."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"model.encoder.quantization={quantization} needs a CUDA GPU (bitsandbytes); none is here")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            f"model.encoder.quantization={quantization} needs the bitsandbytes package: pip install 'lmrec[quant]'"
        )


def encoder_width(files: EncoderFiles) -> int:
    """The encoder's output width from its config.json or GGUF header, without importing transformers."""
    if files.gguf_file:
        from gguf import GGUFReader

        reader = GGUFReader(files.folder / files.gguf_file)
        arch = bytes(reader.fields["general.architecture"].parts[-1]).decode()
        field = reader.fields.get(f"{arch}.embedding_length")
        if field is None:
            raise ConfigError(f"{files.folder / files.gguf_file}: no {arch}.embedding_length in the GGUF header")
        return int(field.parts[-1][0])
    config = json.loads((files.folder / "config.json").read_text())
    for key in ("hidden_size", "d_model", "dim", "n_embd"):
        if isinstance(config.get(key), int):
            return int(config[key])
    from transformers import AutoConfig  # unusual config layouts: let transformers resolve the alias

    return int(AutoConfig.from_pretrained(files.folder).hidden_size)
