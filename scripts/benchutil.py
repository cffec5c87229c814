"""What every benchmark script records next to its figures: the machine, the code version, the JSON output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def machine_info(threads: int | None = None) -> dict:
    """What a reader needs to compare these numbers with others: CPU, cores, threads, load, code version."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": _git("rev-parse", "--short", "HEAD").strip(),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no").strip()),
        "loadavg_1_5_15_at_end": list(os.getloadavg()),
    }
    if threads is not None:
        info["torch_threads"] = threads
    return info


def write_json(path: str | None, result: dict) -> None:
    """Write `result` to `path` when the user asked for it (--json)."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(result, indent=2) + "\n")


def plain_last_token_encode(encoder, texts: list[str], batch_size: int, max_length: int, sort: bool = False):
    """The loop a user would write with transformers, the reference the LLM encoding benchmarks compare lmrec's
    `TextEncoder.encode` against: tokenizer(batch) truncated to max_length - 1 plus EOS (as lmrec appends it),
    padding per batch, model(**batch), the state at each row's last real token, in the texts' order (`sort`:
    longest first, to isolate what length sorting buys)."""
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
    return out
