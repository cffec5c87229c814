"""Item-encoding throughput: lmrec's `TextEncoder.encode` against sentence-transformers' `SentenceTransformer.encode`.

What is measured
    Texts per second of the one-off pass that fills lmrec's item-embedding cache, on the same model (the configured
    `model.encoder`: the packaged all-MiniLM-L6-v2), the same texts (the bundled catalogue's item texts as the
    datamodule renders them; `--limit N` keeps the first N), the same batch size, the same maximum sequence length
    (128; sentence-transformers' own default for this model is 256) and L2 normalisation on both.

Why
    lmrec encodes with its own loop (tokenize once, sort by length, per-batch padding, inference mode) rather than
    calling sentence-transformers. This checks that the home-grown loop is not slower than the reference library
    and gives the same vectors (the maximum absolute difference must be under `--atol`).

How
    Both encoders are loaded, then warmed up once on a few texts; then runs alternate (lmrec, st, lmrec, st, ...,
    `--repeats` of each) and the medians are compared (ratio > 1: lmrec is faster). Only encoding is timed
    (tokenization is inside both `encode` calls, model loading is not). Without sentence-transformers installed,
    lmrec's side is measured alone. Quick: a tiny random BERT (the MiniLM tokenizer) on 64 texts, one run each.
"""

from __future__ import annotations

import argparse
import os

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, compose, encoder_kwargs, prepared, tiny_encoder_overrides
from lmrec.bench.registry import Benchmark, Context, Result, importable, register


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run encode`."""
    parser.add_argument("--limit", type=int, default=None, help="encode only the first N item texts (default: all)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size of both encoders (128)")
    parser.add_argument("--max-length", type=int, default=128, help="max tokens per text, both encoders (128)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each encoder, alternated (3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument("--atol", type=float, default=1e-4, help="max allowed |lmrec - st| per coordinate")
    parser.add_argument("overrides", nargs="*", help="lmrec-train overrides (e.g. model/encoder=mpnet_base)")


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    import torch

    from lmrec.bench.decoders import max_abs_diff
    from lmrec.bench.timing import alternate
    from lmrec.encoders.text_encoder import TextEncoder

    limit, repeats = (64, 1) if ctx.quick else (args.limit, args.repeats)
    overrides = [f"model.encoder.max_length={args.max_length}", "model.encoder.normalize=true", *args.overrides]
    if ctx.quick:
        overrides = [*QUICK_DATA, *tiny_encoder_overrides(ctx.workdir), *overrides]
    cfg = compose(overrides, ctx.workdir, ctx.cache_dir)
    _, datamodule = prepared(cfg)
    texts = datamodule.item_texts[:limit] if limit else datamodule.item_texts
    threads = 1 if ctx.quick else args.threads
    torch.set_num_threads(threads)
    options, _ = encoder_kwargs(cfg.model.encoder)
    encoder = TextEncoder(**options)
    runs = {"lmrec": lambda: encoder.encode(texts, batch_size=args.batch_size, show_progress=False)}
    warm = {"lmrec": lambda: encoder.encode(texts[:16], batch_size=args.batch_size, show_progress=False)}
    result: Result = {"reference": "not installed"}
    if importable("sentence-transformers"):
        import sentence_transformers

        st = sentence_transformers.SentenceTransformer(str(encoder.model_dir), device="cpu")
        st.max_seq_length = args.max_length

        def st_encode(batch: list[str]) -> torch.Tensor:
            """sentence-transformers' encode, normalised as lmrec's, as a CPU tensor."""
            out = st.encode(
                batch,
                batch_size=args.batch_size,
                show_progress_bar=False,
                convert_to_tensor=True,
                normalize_embeddings=True,
            )
            return out.cpu()

        runs["st"] = lambda: st_encode(texts)
        warm["st"] = lambda: st_encode(texts[:16])
        result["reference"] = {"name": "sentence-transformers", "version": sentence_transformers.__version__}
    timed = alternate(runs, repeats, warmup=warm, report=ctx.log)
    figures = {"texts": len(texts), **{name: t.summary(len(texts)) for name, t in timed.timings.items()}}
    checks = {}
    if "st" in runs:
        diff = max_abs_diff(timed.outputs["lmrec"], timed.outputs["st"])
        figures["ratio_lmrec_over_st"] = timed.timings["st"].median / timed.timings["lmrec"].median
        figures["max_abs_diff"] = diff
        checks["vectors_agree"] = diff <= args.atol
    result.update(
        figures=figures,
        checks=checks,
        options={
            "encoder": cfg.model.encoder.name_or_path if not ctx.quick else "tiny random BERT",
            "batch_size": args.batch_size,
            "max_length": args.max_length,
            "repeats": repeats,
            "threads": threads,
            "atol": args.atol,
            "overrides": list(args.overrides),
        },
    )
    return result


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        get = lambda path, rec=r: tables.get(rec, path)  # noqa: E731
        runs = lambda name, rec=r: ", ".join(f"{x:.1f}" for x in tables.get(rec, f"figures.{name}.runs_per_s", []))  # noqa: E731
        rows.append(
            [
                tables.run_cell(r),
                "lmrec `TextEncoder.encode`",
                tables.cell(get("figures.lmrec.per_s"), ".1f"),
                tables.cell(get("figures.lmrec.median_s"), ".2f"),
                runs("lmrec"),
                "",
                "",
            ]
        )
        if get("figures.st") is not None:
            rows.append(
                [
                    "",
                    "`SentenceTransformer.encode`",
                    tables.cell(get("figures.st.per_s"), ".1f"),
                    tables.cell(get("figures.st.median_s"), ".2f"),
                    runs("st"),
                    f"**{tables.cell(get('figures.ratio_lmrec_over_st'), '.2f')}**",
                    tables.cell(get("figures.max_abs_diff"), ".1e"),
                ]
            )
    header = ["run", "encoder", "median texts/s", "median s", "runs (texts/s)", "lmrec / st", "max abs diff"]
    return tables.table(header, rows, "llrrlrr")


register(
    Benchmark(
        name="encode",
        description="Item-encoding throughput: lmrec's TextEncoder.encode vs sentence-transformers, same vectors",
        run=run,
        add_arguments=add_arguments,
        table=table,
        reference=("sentence-transformers",),
        module=__name__,
    )
)
