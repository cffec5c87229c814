"""A 0.5B-1.5B decoder as a reranker on one GPU: choice scoring against a plain loop, LoRA step time, memory.

What is measured (one process; prompts as `experiment=rerank` renders them: 10 history items, 20 candidates)
    score   users/s of `RerankerModule.choice_logits` against the plain transformers loop over the same token ids
            (`lmrec.bench.suite.rerank.plain_choice_logits`), alternated; the label logits must agree (--atol);
    lora    milliseconds per training step of the reranker tuned with `model/tuning=lora` (r 8, alpha 16, peft's
            target modules): choice prompts of --lora-batch users, cross-entropy over the 20 label tokens,
            backward, AdamW step; the median after 3 warm-up steps.
    Peak accelerator memory is reset before and read after each phase.

Which model
    `--model DIR`: a local transformers causal-LM folder (a real Qwen2.5-0.5B/1.5B-Instruct, or any other); without
    it a Qwen2 causal LM of a published shape (`--shape`) with random weights and the packaged SmolLM2 tokenizer
    (`--tokenizer DIR`): speed and memory depend on the shape and the token counts, not on the weight values.

Why
    A 135M model on a CPU does not lift its retriever (docs/rerankers.md); LlamaRec's lift came from a 7B model. This
    job says what one GPU pays per 1,000 users and per training step for the next sizes up, so a researcher can plan
    the tuned 0.5B-1.5B reranker run (`lmrec-train experiment=rerank model.encoder.name_or_path=<folder>
    model/tuning=lora trainer.accelerator=gpu`). Part of `scripts/gpu_checks.sh`. Quick: the CPU path on a tiny
    random Qwen2.
"""

from __future__ import annotations

import argparse
from typing import Any

from lmrec.bench import tables
from lmrec.bench.configured import QUICK_DATA, compose, prepared
from lmrec.bench.decoders import SHAPES, random_model_folder
from lmrec.bench.registry import Benchmark, Context, Result, register
from lmrec.bench.timing import alternate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own options of `lmrec-bench run rerank_gpu`."""
    parser.add_argument("--model", default=None, help="a local causal-LM folder (default: random --shape)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder for a random --shape model")
    parser.add_argument("--users", type=int, default=256, help="users scored per round (256)")
    parser.add_argument("--batch-size", type=int, default=32, help="prompts per forward pass (32)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds of each loop, alternated (2)")
    parser.add_argument("--lora-batch", type=int, default=8, help="users per LoRA training step (8)")
    parser.add_argument("--lora-steps", type=int, default=10, help="timed LoRA steps after 3 warm-up steps (10)")
    parser.add_argument("--atol", type=float, default=0.5, help="max |lmrec - plain| of a label logit (bf16)")


def lora_phase(cfg: Any, datamodule: Any, history: Any, candidates: Any, batch: int, steps: int, device: Any,
               sync: Any) -> dict:  # fmt: skip
    """Median ms per LoRA training step of the reranker on choice prompts."""
    import time

    import torch

    from lmrec.encoders.causal_lm import AnswerScorer
    from lmrec.encoders.configured import build_tuning, encoder_options
    from lmrec.model.rerank_prompts import PromptBuilder, PromptOptions
    from lmrec.model.reranker import RerankerModule
    from lmrec.tasks.rerank import RerankTask

    options, _ = encoder_options(cfg.model.encoder)
    scorer = AnswerScorer.from_options(options, build_tuning(cfg.model.tuning)).to(device)
    prompts = PromptBuilder(scorer.tokenizer, datamodule.item_texts, PromptOptions(**dict(cfg.model.prompt)))
    task = RerankTask(retriever="none", candidates=candidates.shape[1], history=history.shape[1])
    module = RerankerModule(scorer, prompts, task, optimization=None, batch_size=batch).to(device)
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=5e-4)
    target = torch.zeros(batch, dtype=torch.long, device=device)
    times = []
    for step in range(steps + 3):
        rows = torch.arange(step * batch, (step + 1) * batch) % len(history)
        if sync:
            sync()
        started = time.perf_counter()
        logits = module.choice_logits(history[rows], candidates[rows]).float()
        loss = torch.nn.functional.cross_entropy(logits, target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if sync:
            sync()
        if step >= 3:
            times.append(1000 * (time.perf_counter() - started))
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return {"ms_per_step_median": float(torch.tensor(times).median()), "ms_per_step": times, "trainable": trainable}


def score_phase(module: Any, history: Any, candidates: Any, batch_size: int, repeats: int, sync: Any,
                ctx: Context) -> dict:  # fmt: skip
    """Users/s of lmrec's choice scoring and of the plain loop over the same prompts, and their difference."""
    import torch

    from lmrec.bench.decoders import max_abs_diff
    from lmrec.bench.suite.rerank import plain_choice_logits

    rows = [module.prompts.choice(h.tolist(), c.tolist()) for h, c in zip(history, candidates, strict=True)]
    pad = module.prompts.tokenizer.pad_token_id or 0

    def lmrec(n: int) -> Any:
        with torch.inference_mode():
            return module.choice_logits(history[:n], candidates[:n]).float().cpu()

    def plain(n: int) -> Any:
        return plain_choice_logits(module.scorer.causal_lm, rows[:n], module.answer_ids, batch_size, pad)

    timed = alternate(
        {"lmrec": lambda: lmrec(len(rows)), "plain": lambda: plain(len(rows))},
        repeats,
        warmup={"lmrec": lambda: lmrec(batch_size), "plain": lambda: plain(batch_size)},
        sync=sync,
        report=ctx.log,
    )
    return {
        **{name: t.summary(len(rows)) for name, t in timed.timings.items()},
        "ratio_lmrec_time_over_plain": timed.ratio("lmrec", "plain"),
        "max_abs_diff": max_abs_diff(timed.outputs["lmrec"], timed.outputs["plain"]),
        "prompt_tokens_mean": sum(len(r) for r in rows) / len(rows),
    }


def run(args: argparse.Namespace, ctx: Context) -> Result:
    """Run the benchmark (quick: the tiny slice on the CPU): its figures, options and facts, for the record."""
    import torch

    from lmrec.bench.suite.rerank import build_module, prompts_of
    from lmrec.runtime.resources import peak_memory_mb, reset_peak_memory

    quick = ctx.quick
    users, repeats, batch_size = (16, 1, 4) if quick else (args.users, args.repeats, args.batch_size)
    lora_batch, steps, shape = (2, 1, "tiny") if quick else (args.lora_batch, args.lora_steps, args.shape)
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    sync = torch.cuda.synchronize if gpu else None
    dtype = "bfloat16" if gpu else "float32"
    figures: dict = {}
    folder = args.model
    if folder is None:
        folder, figures["params"] = random_model_folder(ctx.workdir, quick, shape, args.tokenizer, dtype, causal=True)
    overrides = [*(QUICK_DATA if quick else ()), "task=ranking", "model=reranker", "model.encoder.gguf_file=null",
                 f"model.encoder.name_or_path={folder}", f"model.encoder.dtype={dtype}",
                 f"model.batch_size={batch_size}", f"model.prompt.chat={'false' if quick else 'true'}"]  # fmt: skip
    cfg = compose(overrides, ctx.workdir, ctx.cache_dir)
    _, datamodule = prepared(cfg)
    history, candidates = prompts_of(datamodule, users)
    reset_peak_memory(device)
    figures["score"] = score_phase(build_module(cfg, datamodule, str(device)), history, candidates, batch_size,
                                   repeats, sync, ctx)  # fmt: skip
    figures["score"]["peak_mb"] = peak_memory_mb(device)
    if gpu:
        torch.cuda.empty_cache()
    reset_peak_memory(device)
    lora_cfg = compose([*overrides, "model/tuning=lora"], ctx.workdir, ctx.cache_dir)
    figures["lora"] = lora_phase(lora_cfg, datamodule, history, candidates, lora_batch, steps, device, sync)
    figures["lora"]["peak_mb"] = peak_memory_mb(device)
    return {
        "figures": figures,
        "checks": {"logits_agree": figures["score"]["max_abs_diff"] <= args.atol},
        "facts": {"device": str(device), "dtype": dtype, "model": str(args.model) if args.model else f"random {shape}"},
        "options": {
            "users": users,
            "batch_size": batch_size,
            "repeats": repeats,
            "lora_batch": lora_batch,
            "lora_steps": steps,
        },  # fmt: skip
    }


def table(records: list[dict]) -> str:
    """The docs table of the committed records of this benchmark (`lmrec-bench tables`)."""
    rows = []
    for r in records:
        rows.append([
            tables.run_cell(r),
            str(tables.get(r, "facts.model") or ""),
            tables.cell(tables.get(r, "figures.score.lmrec.per_s"), ".1f"),
            tables.ratio(tables.get(r, "figures.score.ratio_lmrec_time_over_plain")),
            tables.cell(tables.get(r, "figures.score.peak_mb"), ".0f"),
            tables.cell(tables.get(r, "figures.lora.ms_per_step_median"), ".0f"),
            tables.cell(tables.get(r, "figures.lora.peak_mb"), ".0f"),
        ])  # fmt: skip
    headers = ["run", "model", "users/s", "lmrec time / plain", "peak MB", "LoRA ms/step", "LoRA peak MB"]
    return tables.table(headers, rows, "llrrrrr")


register(
    Benchmark(
        name="rerank_gpu",
        description="A 0.5B-1.5B decoder as a reranker on one GPU: scoring vs a plain loop, LoRA step, memory",
        run=run,
        add_arguments=add_arguments,
        table=table,
        gpu=True,
        module=__name__,
    )
)
