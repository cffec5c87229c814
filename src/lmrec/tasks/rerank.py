"""`rerank`: a language model chooses among a retriever's candidates (LlamaRec, TALLRec, LLMRank's zero-shot setting).

The retriever is any finished lmrec run (`task.retriever`); its top `task.candidates` items per user (default 20,
never an item the user already has) are computed once and cached with the run's identity
(`lmrec.serving.candidates`). The reranker (`model=reranker`: a decoder LM, the packaged SmolLM2-135M by default)
reads the user's `task.history` most recent items and the candidates as text and scores them:

* `task.scoring=choice` (LlamaRec): all candidates in one prompt, labelled A, B, ...; one forward pass, and the
  verbalizer's distribution over the label tokens ranks them;
* `task.scoring=yes_no` (TALLRec): one "will the user like this item?" prompt per candidate; logit(Yes) - logit(No)
  ranks them, and their AUC over the candidates is reported.

Position bias: the candidates are shown in a seeded permutation per user (`task.order=shuffled`, never the
retriever's order unless asked), and `task.permutations` > 1 averages the scores over several orders.

Training (a tuning mode other than frozen): each training user's last training item (or `task.train_targets` latest
ones, one row each) is the target, shown among the retriever's N - 1 best other candidates (its validation-time
list, which masks training items) in a seeded order;
the loss is cross-entropy over the candidates (choice) or binary cross-entropy per candidate (yes_no). Zero-shot
is the frozen model with no training step.

Evaluation reports, on the same users: the reranker over the full catalogue (`ndcg@10`: the reranked candidates,
then the retriever's ranking of every other item), on the candidate set (`candidates20/ndcg@10`, over the users
whose held-out item was retrieved), and the retriever's own numbers on both (`retriever/ndcg@10`,
`retriever/candidates20/ndcg@10`). `candidates20/top1_position` is the mean position (0 = A) of each user's top
choice in the prompt: about (N - 1) / 2 for an unbiased reranker under shuffling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
import torchmetrics
from torch.utils.data import Dataset

from lmrec.config.schema import POSITIVE, ListOf, Matches, OneOf, Option, Whole, check_values
from lmrec.data.batches import RankingEvalBatches
from lmrec.data.interactions import InteractionSplits
from lmrec.data.sequences import sequences_of
from lmrec.errors import ConfigError
from lmrec.tasks.base import RetrieverLoader, Task
from lmrec.tasks.metrics import RankingMetricAccumulator, metric_names, normalize_ks, ranking_metrics
from lmrec.tasks.per_user import ROWS
from lmrec.tasks.ranking import SEED_MAX, SEEN_BEFORE
from lmrec.tasks.rerank_candidates import RetrievedCandidates, candidate_orders, merge_full_ranking
from lmrec.tasks.rerank_rows import RerankInputs, RerankTrainRows
from lmrec.tasks.ties import check_tie_policy

SCORINGS = ("choice", "yes_no")
ORDERS = ("shuffled", "retriever")


class Reranker(Protocol):
    """What the rerank task needs from a model: scores of each user's candidates, in the order given."""

    def choice_logits(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """[B, N] label-token logits of candidates [B, N] listed in that order after histories [B, H] (PAD -1)."""
        ...

    def yes_no_logits(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """[B, N] logit(Yes) - logit(No) of each candidate after the user's history."""
        ...


class RerankTask(Task):
    """A decoder LM reranks a retriever's candidates; evaluated on the candidate set and the full catalogue."""

    config_options = (
        Option("retriever", (Matches(r".+", "a path"),), nullable=True, note="a finished lmrec run folder"),
        Option("candidates", (Whole(2, 26),)),
        Option("history", (POSITIVE,)),
        Option("scoring", (OneOf(SCORINGS),)),
        Option("order", (OneOf(ORDERS),)),
        Option("permutations", (POSITIVE,)),
        Option("train_targets", (POSITIVE,), note="training rows per user: their latest training items"),
        Option("ks", (ListOf(POSITIVE),), note="top-K cut-offs"),
        Option("seed", (Whole(0, SEED_MAX),)),
    )

    def __init__(
        self,
        retriever: str | None = None,
        candidates: int = 20,
        history: int = 10,
        scoring: str = "choice",
        order: str = "shuffled",
        permutations: int = 1,
        train_targets: int = 1,
        ks: Sequence[int] = (5, 10, 20),
        ties: str = "random",
        seed: int = 0,
        auc: Sequence[str] = ("val", "test"),
    ) -> None:
        super().__init__()
        options = {"retriever": retriever, "candidates": candidates, "history": history, "scoring": scoring,
                   "order": order, "permutations": permutations, "train_targets": train_targets, "ks": ks,
                   "seed": seed}  # fmt: skip
        check_values(RerankTask.config_options, options, "task")
        if retriever is None:
            raise ConfigError("task.retriever is not set: give the folder of a finished lmrec run, e.g. an EASE run")
        if order == "retriever" and permutations > 1:
            raise ConfigError("task.permutations > 1 averages over shuffled orders; it needs task.order=shuffled")
        self.retriever, self.size, self.history = str(retriever), int(candidates), int(history)
        self.scoring, self.order, self.permutations = scoring, order, int(permutations)
        self.train_targets = int(train_targets)
        self.ks = list(normalize_ks(ks))
        self.ties, self.seed = check_tie_policy(ties), int(seed)
        if isinstance(auc, str) or not set(auc) <= {"val", "test"}:
            raise ConfigError(f"task.auc={auc!r}; expected a list of splits from [val, test]")
        self.auc_splits = tuple(s for s in ("val", "test") if s in auc)
        self._retrieved: RetrievedCandidates | None = None
        self._load: Callable[[], RetrievedCandidates] | None = None

    # -- the retriever's candidates (attached by the entry point, which can load a run) ----------------------------
    def attach_retriever(self, retriever: RetrieverLoader | None, cache_dir: str | None) -> None:
        """How to get the candidates; the loader runs once the data is read (loading the retriever is heavy work)."""
        if retriever is None:
            raise ConfigError(
                "task=rerank runs through lmrec-train and lmrec-eval; this command cannot load a retriever"
            )
        self._load = retriever(self.retriever, self.size, cache_dir)

    def retrieved(self, splits: InteractionSplits) -> RetrievedCandidates:
        if self._retrieved is None:
            if self._load is None:
                raise ConfigError("the rerank task has no retriever attached (build it through lmrec's entry points)")
            retrieved = self._load()
            retrieved.check_matches(splits)
            if retrieved.depth() < self.size:
                raise ConfigError(f"the cached candidates hold {retrieved.depth()} per user, fewer than {self.size}")
            for split, top in retrieved.top.items():
                short = torch.nonzero((top[:, : self.size] < 0).any(dim=1)).squeeze(1)
                if len(short):
                    raise ConfigError(
                        f"task.retriever={self.retriever} has fewer than {self.size} candidates for {len(short)} "
                        f"users in {split} (e.g. user index {int(short[0])}: it could not score them, or they have "
                        "seen almost every item); lower task.candidates"
                    )
            self._retrieved = retrieved
        return self._retrieved

    # -- datasets ----------------------------------------------------------------------------------------------------
    def train_dataset(self, splits: InteractionSplits) -> Dataset:
        retrieved = self.retrieved(splits)
        sequences = sequences_of(splits, ["train"])
        top = retrieved.top["val"]
        return RerankTrainRows(sequences, top, self.history, self.size, self.seed, self.train_targets)

    def eval_dataset(self, splits: InteractionSplits, split: str) -> Dataset:
        retrieved = self.retrieved(splits)
        sequences = sequences_of(splits, SEEN_BEFORE[split])
        top = retrieved.top[split][:, : self.size]
        extras = [RerankInputs(sequences, self.history, top, retrieved.scores[split])]
        return RankingEvalBatches(splits.matrix(split), splits.matrix(*SEEN_BEFORE[split]), split=split, extras=extras)

    # -- scoring -------------------------------------------------------------------------------------------------
    def shown_scores(self, model: Reranker, history: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
        """The model's scores of candidates shown in the order given: log-probabilities over them (choice), or
        yes-minus-no logits (yes_no)."""
        if self.scoring == "choice":
            return model.choice_logits(history, shown).float().log_softmax(dim=1)
        return model.yes_no_logits(history, shown).float()

    def candidate_scores(
        self, model: Reranker, users: torch.Tensor, history: torch.Tensor, candidates: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """([B, N] scores of the candidates in the retriever's order, averaged over the shown orders; [B] the
        position in the first shown order of each user's top choice)."""
        total, first_top = torch.zeros(candidates.shape, dtype=torch.float32), None
        for p in range(self.permutations):
            if self.order == "retriever":
                order = torch.arange(self.size).expand(len(users), -1)
            else:
                order = candidate_orders(self.seed, users, self.size, p)
            scores = self.shown_scores(model, history, candidates.gather(1, order.to(candidates.device))).cpu()
            if first_top is None:
                first_top = scores.argmax(dim=1).float()
            total.scatter_add_(1, order, scores)  # back to the retriever's order
        return total / self.permutations, first_top

    def training_loss(self, model: Reranker, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        scores = self.shown_scores(model, batch["history"], batch["candidates"])
        target = batch["target"].to(scores.device)
        if self.scoring == "choice":
            return torch.nn.functional.nll_loss(scores, target)
        labels = torch.nn.functional.one_hot(target, self.size).float()
        return torch.nn.functional.binary_cross_entropy_with_logits(scores, labels)

    # -- metrics -------------------------------------------------------------------------------------------------
    @property
    def candidate_ks(self) -> list[int]:
        return [k for k in self.ks if k <= self.size]

    def metric_names(self, split: str | None = None) -> list[str]:
        auc = bool(self.auc_splits) if split is None else split in self.auc_splits
        full, on_candidates = metric_names(self.ks, auc=auc), metric_names(self.candidate_ks, auc=True)
        label = f"candidates{self.size}"
        return [
            *full,
            *[f"{label}/{n}" for n in on_candidates],
            f"{label}/top1_position",
            *[f"retriever/{n}" for n in full],
            *[f"retriever/{label}/{n}" for n in on_candidates],
        ]

    def make_metrics(self, split: str | None = None) -> torchmetrics.MetricCollection:
        names = self.metric_names(split)
        auc = "auc" in names
        extra = names[len(metric_names(self.ks, auc=auc)) :]
        accumulator = RankingMetricAccumulator(self.ks, auc=auc, ties=self.ties, extra_names=extra)
        return torchmetrics.MetricCollection({"ranking": accumulator})

    def row_columns(self, split: str) -> tuple[list[str], list[str]]:
        return ["user"], self.metric_names(split)

    def update_metrics(
        self, metrics: torchmetrics.MetricCollection, model: Reranker, batch: dict[str, torch.Tensor]
    ) -> None:
        users, split = batch["users"], batch.get("split")
        targets, exclude = batch["targets"], batch["exclude"]
        candidates, retriever = batch["candidates"], batch["retriever_scores"]
        scores, top_position = self.candidate_scores(model, users, batch["history"], candidates)
        on_candidates = targets.gather(1, candidates)
        auc = split is None or split in self.auc_splits
        options = {"ties": self.ties, "seed": self.seed, "users": users}
        label = f"candidates{self.size}"
        values = ranking_metrics(merge_full_ranking(retriever, candidates, scores), targets, exclude, self.ks,
                                 auc=auc, **options)  # fmt: skip
        ranked = ranking_metrics(scores, on_candidates, None, self.candidate_ks, auc=True, **options)
        values |= {f"{label}/{k}": v for k, v in ranked.items()}
        values[f"{label}/top1_position"] = top_position
        own = ranking_metrics(retriever, targets, exclude, self.ks, auc=auc, **options)
        values |= {f"retriever/{k}": v for k, v in own.items()}
        own_candidates = retriever.gather(1, candidates)
        own_ranked = ranking_metrics(own_candidates, on_candidates, None, self.candidate_ks, auc=True, **options)
        values |= {f"retriever/{label}/{k}": v for k, v in own_ranked.items()}
        metrics["ranking"].update(values=values)
        if ROWS in metrics:
            metrics[ROWS].update(user=users, **values)

    def eval_scores(self, model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Full-catalogue scores as evaluated: the reranked candidates above the retriever's ranking of the rest."""
        scores, _ = self.candidate_scores(model, batch["users"], batch["history"], batch["candidates"])
        return merge_full_ranking(batch["retriever_scores"], batch["candidates"], scores)
