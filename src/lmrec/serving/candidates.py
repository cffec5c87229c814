"""A retriever's candidates for a rerank run: a finished run loaded as data, every user scored once, cached.

The retriever run is loaded with `lmrec.serving.loaded.load_run` (its config through the narrow allow-list, its
checkpoint with weights_only=True, its data checked against the fingerprint it recorded) and every user is scored
for validation and test exactly as the run's own evaluation scores them (`Task.user_input_reader` + `Task.eval_scores`:
a sequence model reads the user's sequence, EASE the folded history). Each split's candidates are the top items
that split's evaluation does not mask (what the user had before it), so a candidate is never an item the user
already has.

The result is cached in `<paths.cache_dir>/candidates/<key>/`, the key a SHA-256 of the checkpoint file, the run's
resolved config and the depth: a retriever retrained in the same folder gets new candidates, and every rerank run
over one retriever (zero-shot, tuned, yes/no, each seed) reads the same ones. The entry is sealed and verified like
every lmrec cache entry; a damaged one is computed again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from lmrec.atomic import publish_dir
from lmrec.cache_integrity import entry_lock, seal_dir, verified_entry
from lmrec.data.io.checksums import sha256_file
from lmrec.errors import CheckpointError, ConfigError, MissingInputError
from lmrec.runs.folder import locate_run
from lmrec.runtime.progress import progress_bar
from lmrec.tasks.ranking import SEEN_BEFORE
from lmrec.tasks.rerank_candidates import RetrievedCandidates, splits_fingerprint, top_candidates

log = logging.getLogger(__name__)

#: Bump when what an entry holds changes.
FORMAT = 1
EVALUATED = ("val", "test")
#: Users scored per pass (a [users, items] block).
CHUNK = 256


def retriever_run(retriever: str | Path) -> tuple[Path, Path]:
    """(run folder, best checkpoint) of `task.retriever`, refused in a second when it is not a finished run."""
    try:
        return locate_run(Path(retriever), "best")
    except (MissingInputError, CheckpointError) as err:
        raise ConfigError(f"task.retriever={retriever}: {err}") from None


def candidates_key(folder: Path, checkpoint: Path, depth: int) -> str:
    digest = hashlib.sha256(f"format {FORMAT} depth {depth}\n".encode())
    digest.update(sha256_file(checkpoint).encode())
    resolved = folder / "config_resolved.yaml"
    digest.update(resolved.read_bytes() if resolved.is_file() else b"")
    return digest.hexdigest()


def retrieved_candidates(retriever: str | Path, depth: int, cache_dir: str | Path | None) -> RetrievedCandidates:
    """The retriever's top `depth` candidates and scores per evaluated split, from the cache or computed now."""
    folder, checkpoint = retriever_run(retriever)
    if cache_dir is None:
        return compute_candidates(str(retriever), folder, depth)
    entry = Path(cache_dir) / "candidates" / candidates_key(folder, checkpoint, depth)
    with entry_lock(entry):
        if verified_entry(entry, "retriever candidates"):
            payload = torch.load(entry / "candidates.pt", map_location="cpu", weights_only=True)
            log.info("retriever candidates read from %s", entry)
            return RetrievedCandidates(str(retriever), payload["splits_sha256"], payload["top"], payload["scores"])
        retrieved = compute_candidates(str(retriever), folder, depth)
        with publish_dir(entry) as tmp:
            payload = {"splits_sha256": retrieved.splits_sha256, "top": retrieved.top, "scores": retrieved.scores}
            torch.save(payload, tmp / "candidates.pt")
            seal_dir(tmp)
    log.info("retriever candidates cached in %s", entry)
    return retrieved


@torch.inference_mode()
def compute_candidates(name: str, folder: Path, depth: int) -> RetrievedCandidates:
    """Load the run at `folder` and score every user for each evaluated split."""
    from lmrec.serving.loaded import load_run  # the serving entry's loader (it imports the entry points' builders)

    loaded = load_run(folder)
    splits = loaded.datamodule.splits
    users = torch.arange(splits.num_users)
    top, scores = {}, {}
    with progress_bar("retriever candidates", total=2 * len(users), unit="users") as advance:
        for split in EVALUATED:
            seen = splits.matrix(*SEEN_BEFORE[split])
            split_scores, split_top = [], []
            read_inputs = loaded.task.user_input_reader(splits, split)
            for chunk in users.split(CHUNK):
                block = loaded.task.eval_scores(loaded.model, read_inputs(chunk)).float().cpu()
                split_top.append(top_candidates(block, seen.dense_rows(chunk), depth))
                split_scores.append(block)
                advance(len(chunk))
            top[split], scores[split] = torch.cat(split_top), torch.cat(split_scores)
    return RetrievedCandidates(name, splits_fingerprint(splits), top, scores)


def candidate_loader(retriever: str, depth: int, cache_dir: str | Path | None) -> Callable[[], RetrievedCandidates]:
    """What a rerank task calls once its data is read: the folder is checked now, the candidates computed then."""
    retriever_run(retriever)
    return lambda: retrieved_candidates(retriever, depth, cache_dir)
