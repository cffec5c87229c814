"""`model=reranker`: a decoder LM that scores a retriever's candidates from prompts (the `rerank` task's model).

`RerankerModelBuilder` keeps the builder contract (`lmrec.model.builders`), so `lmrec-train`, `lmrec-eval` and the
sweeps run a reranker as they run any model; `RerankerModule` is its LightningModule. Zero-shot is the frozen LM
(`model/tuning=frozen`, the default): one empty training step, as a fitted baseline takes, so the run still
writes its validation metric and a checkpoint (which holds no LM weight: they are the model files'). With a tuning
mode (`model/tuning=lora`), the LM trains on the task's loss with the tuning mode's own learning rate.

Speed: each call scores prompts in length-sorted chunks of `model.batch_size`, right-padded, and reads only the
answer tokens' logits (`lmrec.encoders.causal_lm`). The part every prompt starts with (the chat template's system
turn and the instruction before the history) is computed once per call and its key/value cache shared by the
chunk; a yes/no prompt shares the user's whole history prefix across that user's candidates. The cost is
recorded: prompt tokens computed per user and seconds per 1,000 users (`<split>/cost/*`), seconds per training
step (`train/cost/seconds_per_step`).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig
from torch import nn

from lmrec.config.schema import POSITIVE, Option, nested
from lmrec.data.datamodule import RecDataModule
from lmrec.encoders.causal_lm import AnswerScorer
from lmrec.encoders.configured import build_tuning, encoder_options
from lmrec.encoders.options import ENCODER_OPTIONS
from lmrec.encoders.tuning.base import TUNING_OPTIONS, encoder_parameter_groups
from lmrec.errors import ConfigError
from lmrec.model.evaluation import TaskEvaluation
from lmrec.model.optimization import Optimization
from lmrec.model.rerank_prompts import LABELS, PromptBuilder, PromptOptions, pad_right
from lmrec.tasks.base import Task

log = logging.getLogger(__name__)


class RerankerModule(TaskEvaluation):
    """A decoder LM, its prompts and the rerank task; scores candidates for the task's loss and metrics."""

    def __init__(
        self, scorer: AnswerScorer, prompts: PromptBuilder, task: Task, optimization: Optimization, batch_size: int
    ) -> None:
        super().__init__(task)
        self.scorer, self.prompts, self.optimization = scorer, prompts, optimization
        self.batch_size = int(batch_size)
        # The answers of the task's question form only: another form's answers need not be tokens of this model.
        if getattr(task, "scoring", "choice") == "choice":
            labels = prompts.answer_tokens("choice", LABELS[: int(getattr(task, "size", len(LABELS)))])
        else:
            labels = prompts.answer_tokens("yes_no", [prompts.options.answer_yes, prompts.options.answer_no])
        self.register_buffer("answer_ids", labels, persistent=False)
        self._tuned = any(p.requires_grad for p in scorer.parameters())
        if self._tuned:  # Lightning keeps each module's mode: a tuned LM trains with its (adapter) dropout on
            scorer.train()
        self.strict_loading = False  # the LM's frozen weights are left out of checkpoints (lmrec.runs.checkpoints)
        self._cost: dict[str, float] = {}
        self._step_started: float | None = None

    def trainable_encoders(self) -> tuple[AnswerScorer, ...]:
        return (self.scorer,) if self._tuned else ()

    # -- scoring (what the rerank task calls) ----------------------------------------------------------------------
    def choice_logits(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """[B, N] the label tokens' logits of each user's prompt listing `candidates` in that order."""
        size = candidates.shape[1]
        rows = [self.prompts.choice(h.tolist(), c.tolist()) for h, c in zip(history, candidates, strict=True)]
        shared = len(self.prompts.forms["choice"][0][0])  # the instruction before the history: every prompt's start
        prefix = rows[0][:shared]
        return self._answer_logits(prefix, [r[shared:] for r in rows], self.answer_ids[:size])

    def yes_no_logits(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """[B, N] logit(Yes) - logit(No) of each candidate's prompt; a user's history prefix is computed once."""
        out = []
        for h, items in zip(history, candidates, strict=True):
            prefix, after = self.prompts.yes_no_parts(h.tolist())
            suffixes = [self.prompts.item_ids[i] + after for i in items.tolist()]
            logits = self._answer_logits(prefix, suffixes, self.answer_ids)
            out.append(logits[:, 0] - logits[:, 1])
        return torch.stack(out)

    def _answer_logits(self, prefix: list[int], suffixes: Sequence[list[int]], tokens: torch.Tensor) -> torch.Tensor:
        """[len(suffixes), len(tokens)] logits of `tokens` after prefix + each suffix, the prefix's key/value cache
        computed once, suffixes scored in length-sorted chunks."""
        device = self.scorer.device
        cache = self.scorer.prefix_cache(torch.tensor([prefix], device=device)) if prefix else None
        pad = self.prompts.tokenizer.pad_token_id or 0
        order = sorted(range(len(suffixes)), key=lambda i: -len(suffixes[i]))
        out = torch.empty(len(suffixes), len(tokens), device=device)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            ids, mask = pad_right([suffixes[i] for i in rows], pad)
            past = None
            if cache is not None:
                past = _expanded(cache, len(rows))
                mask = torch.cat([torch.ones(len(rows), len(prefix), dtype=mask.dtype), mask], dim=1)
            hidden = self.scorer.last_hidden(ids.to(device), mask.to(device), past)
            out[torch.tensor(rows, device=device)] = self.scorer.token_logits(hidden, tokens.to(device))
        self._count(len(prefix) + sum(len(s) for s in suffixes))
        return out

    def _count(self, tokens: int) -> None:
        self._cost["tokens"] = self._cost.get("tokens", 0.0) + tokens

    # -- training --------------------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        for encoder in self.trainable_encoders():
            encoder.on_fit_start(int(self.trainer.estimated_stepping_batches))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        if not self._tuned:  # zero-shot: nothing trains; the step only lets the loop validate and checkpoint
            return None
        started = time.perf_counter()
        loss = self.task.training_loss(self, batch)
        extra = self.scorer.regularization()
        if extra is not None:
            loss = loss + extra
        size = len(batch["users"])
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=size)
        self.log("train/loss_step", loss, on_step=True, on_epoch=False, batch_size=size)
        self._step_started = started
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        for encoder in self.trainable_encoders():
            encoder.after_optimizer_step(self.global_step)
        if self._step_started is not None:  # forward, backward and the optimizer step
            seconds = time.perf_counter() - self._step_started
            self.log("train/cost/seconds_per_step", seconds, on_step=False, on_epoch=True, batch_size=1)
            self._step_started = None

    def configure_optimizers(self) -> Any:
        if not self._tuned:
            return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.0)  # Lightning needs one; it never steps
        steps = lambda: int(self.trainer.estimated_stepping_batches)  # noqa: E731 - asked only by a step schedule
        groups = encoder_parameter_groups(
            self, self.trainable_encoders(), self.optimization.encoder_lr, self.optimization.encoder_weight_decay
        )
        return self.optimization.configure(groups, steps)

    # -- evaluation (lmrec.model.evaluation), timed: the ranking cost per user ----------------------------------------
    def evaluate_batch(self, split: str, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        started = time.perf_counter()
        super().evaluate_batch(split, batch, batch_idx)
        self._cost["seconds"] = self._cost.get("seconds", 0.0) + time.perf_counter() - started
        self._cost["users"] = self._cost.get("users", 0.0) + len(batch["users"])
        if batch_idx % 10 == 9:  # minutes per pass on a CPU: say how far it is
            users, seconds = self._cost["users"], self._cost["seconds"]
            log.info("%s: %d users reranked, %.2f users/s", split, users, users / max(seconds, 1e-9))

    def start_evaluation(self) -> None:
        self._cost = {}

    def evaluation_extras(self, split: str) -> dict[str, torch.Tensor]:
        users = self._cost.get("users", 0.0)
        if not users:
            return {}
        return {
            f"{split}/cost/prompt_tokens_per_user": torch.tensor(self._cost.get("tokens", 0.0) / users),
            f"{split}/cost/seconds_per_1k_users": torch.tensor(1000 * self._cost["seconds"] / users),
        }

    def parameter_counts(self) -> dict[str, float]:
        total = sum(p.numel() for p in self.scorer.parameters())
        trainable = sum(p.numel() for p in self.scorer.parameters() if p.requires_grad)
        return {"total": total, "trainable": trainable, "trainable_pct": 100.0 * trainable / max(1, total)}


def _expanded(cache: Any, rows: int) -> Any:
    """A copy of a one-row key/value cache repeated for `rows` rows: a forward pass appends to the cache it is given,
    so each chunk gets its own. The layers' tensors are cloned, not deep-copied, which keeps a tuned LM's autograd
    graph (deepcopy refuses tensors that are not graph leaves)."""
    copied = copy.copy(cache)
    copied.layers = []
    for layer in cache.layers:
        new = copy.copy(layer)
        new.keys, new.values = (None if t is None else t.clone() for t in (layer.keys, layer.values))
        copied.layers.append(new)
    copied.batch_repeat_interleave(rows)
    return copied


class RerankerModelBuilder:
    """A decoder LM (`model.encoder`) with a tuning mode (`model.tuning`) and prompts (`model.prompt`)."""

    config_options: ClassVar[tuple[Option, ...]] = (
        Option("batch_size", (POSITIVE,), note="prompts per forward pass"),
        Option("prompt.item_tokens", (POSITIVE,)),
        *nested("encoder", ENCODER_OPTIONS),
        *nested("tuning", TUNING_OPTIONS),
    )

    def __init__(self, model: DictConfig) -> None:
        self.cfg = model
        self.tuning = build_tuning(model.get("tuning"))

    def trainer_options(self) -> dict[str, Any]:
        """Zero-shot: one empty training step, then validation (the run records its metric and a checkpoint)."""
        if self.tuning.caches_embeddings:
            return {"max_epochs": 1, "min_epochs": 1, "limit_train_batches": 1, "num_sanity_val_steps": 0}
        return {"num_sanity_val_steps": 0}

    def frozen_encoder_parameters(self) -> int:
        return 0  # the LM is inside the module and counted there

    def build(
        self,
        datamodule: RecDataModule,
        task: Task,
        device: str = "cpu",
        monitor: str | None = None,
        checkpoint_state: Mapping[str, torch.Tensor] | None = None,
    ) -> RerankerModule:
        cfg = self.cfg
        if not hasattr(task, "candidate_scores"):
            raise ConfigError(
                f"model=reranker scores a retriever's candidates; it needs task=rerank, not {type(task).__name__}"
            )
        optimization = Optimization.from_config(cfg.optimizer, cfg.get("scheduler"), monitor, cfg.get("tuning"))
        options = PromptOptions(**dict(cfg.prompt))
        datamodule.prepare()
        encoder, _ = encoder_options(cfg.encoder)
        scorer = AnswerScorer.from_options(encoder, self.tuning)
        prompts = PromptBuilder(scorer.tokenizer, datamodule.item_texts, options)
        return RerankerModule(scorer, prompts, task, optimization, int(cfg.batch_size))
