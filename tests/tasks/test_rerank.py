"""The rerank task and the reranker model: verbalizer, merge, candidates, orders, AUC, and runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from lmrec.bench.tiny_models import tiny_causal_lm, tiny_tokenizer
from lmrec.cli.components import build_data
from lmrec.cli.train import train
from lmrec.encoders.causal_lm import AnswerScorer
from lmrec.encoders.tuning.modes import FrozenTuning
from lmrec.errors import ConfigError
from lmrec.model.rerank_prompts import LABELS, PromptBuilder, PromptOptions
from lmrec.model.reranker import RerankerModule
from lmrec.tasks.rerank import RerankTask
from lmrec.tasks.rerank_candidates import candidate_orders, merge_full_ranking, top_candidates
from tests.helpers import compose_train, run_cli

TEXTS = ["toy story", "jumanji", "heat", "sabrina", "the lost city", "dark night", "summer love", "war king"]
CHOICE = "items:\n{history}\ncandidates:\n{candidates}\nanswer:"
YES_NO = "items:\n{history}\nlike this?\n{item}\nanswer:"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny-causal-lm"))


def _module(folder: Path, scoring: str, size: int = 4, batch_size: int = 2) -> RerankerModule:
    scorer = AnswerScorer.from_options({"name_or_path": str(folder), "dtype": "float32"}, FrozenTuning())
    options = PromptOptions(choice=CHOICE, yes_no=YES_NO, chat=False, item_tokens=3, answer_yes="Y", answer_no="N")
    prompts = PromptBuilder(scorer.tokenizer, TEXTS, options)
    task = RerankTask(retriever="unused", candidates=size, scoring=scoring, ks=[1, 2])
    return RerankerModule(scorer, prompts, task, optimization=None, batch_size=batch_size)


def _reference_logits(folder: Path, ids: list[int], tokens: torch.Tensor) -> torch.Tensor:
    """The full causal LM's logits at the last position of one unpadded prompt, for `tokens`."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, -1, tokens]


def test_the_verbalizer_is_the_softmax_over_the_label_tokens_of_the_full_model(tiny_lm):
    module = _module(tiny_lm, "choice")
    history = torch.tensor([[0, 1, 2], [-1, 3, 4], [-1, -1, 5]])
    candidates = torch.tensor([[3, 4, 5, 6], [7, 0, 1, 2], [6, 7, 0, 3]])
    with torch.no_grad():
        logits = module.choice_logits(history, candidates)  # shared-prefix cache, chunks of 2, right padding
    tokens = module.prompts.answer_tokens("choice", LABELS[:4])
    for row in range(3):
        ids = module.prompts.choice(history[row].tolist(), candidates[row].tolist())
        expected = _reference_logits(tiny_lm, ids, tokens)
        assert logits[row] == pytest.approx(expected, abs=1e-4)
        by_hand = expected.exp() / expected.exp().sum()
        assert logits[row].softmax(0) == pytest.approx(by_hand, abs=1e-5)


def test_the_shared_prefix_cache_is_exact_with_sliding_window_layers(tmp_path):
    # Gemma-3's local layers keep only the last `sliding_window` positions; prompts here are 7 times longer.
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = tiny_tokenizer(tmp_path)
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, sliding_window=8, layer_types=["sliding_attention", "full_attention"],
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    Gemma3ForCausalLM(config).save_pretrained(tmp_path)
    module = _module(tmp_path, "choice")
    history, candidates = (
        torch.tensor([[0, 1, 2], [-1, 3, 4], [-1, -1, 5]]),
        torch.tensor([[3, 4, 5, 6], [7, 0, 1, 2], [6, 7, 0, 3]]),
    )
    with torch.no_grad():
        logits = module.choice_logits(history, candidates)
    for row in range(3):
        ids = module.prompts.choice(history[row].tolist(), candidates[row].tolist())
        assert len(ids) > 6 * config.sliding_window
        assert logits[row] == pytest.approx(_reference_logits(tmp_path, ids, module.answer_ids[:4]), abs=1e-5)


def test_yes_no_scores_are_the_full_models_yes_minus_no_logits(tiny_lm):
    module = _module(tiny_lm, "yes_no")
    history, candidates = torch.tensor([[0, 1], [-1, 2]]), torch.tensor([[3, 4, 5, 6], [7, 0, 1, 2]])
    with torch.no_grad():
        scores = module.yes_no_logits(history, candidates)  # the history prefix's cache, shared by 4 prompts
    tokens = module.prompts.answer_tokens("yes_no", ["Y", "N"])
    for row in range(2):
        for col in range(4):
            ids = module.prompts.yes_no(history[row].tolist(), int(candidates[row, col]))
            yes, no = _reference_logits(tiny_lm, ids, tokens)
            assert float(scores[row, col]) == pytest.approx(float(yes - no), abs=1e-4)


def test_a_template_without_its_fields_or_with_multi_token_answers_is_refused(tiny_lm):
    scorer = AnswerScorer.from_options({"name_or_path": str(tiny_lm), "dtype": "float32"}, FrozenTuning())
    with pytest.raises(ConfigError, match=r"must contain \{candidates\} exactly once"):
        PromptBuilder(scorer.tokenizer, TEXTS, PromptOptions(choice="{history}", yes_no=YES_NO, chat=False))
    with pytest.raises(ConfigError, match="no chat template"):
        PromptBuilder(scorer.tokenizer, TEXTS, PromptOptions(choice=CHOICE, yes_no=YES_NO, chat=True))
    prompts = PromptBuilder(scorer.tokenizer, TEXTS, PromptOptions(choice=CHOICE, yes_no=YES_NO, chat=False))
    with pytest.raises(ConfigError, match="not one token"):
        prompts.answer_tokens("yes_no", ["Yes", "No"])


def test_the_full_catalogue_merge_is_the_reranked_candidates_then_the_retrievers_order():
    generator = torch.Generator().manual_seed(0)
    retriever = torch.rand(5, 30, generator=generator)
    candidates = torch.stack([torch.randperm(30, generator=generator)[:6] for _ in range(5)])
    reranked = torch.randn(5, 6, generator=generator)
    merged = merge_full_ranking(retriever, candidates, reranked)
    for row in range(5):
        chosen = [int(candidates[row, j]) for j in reranked[row].argsort(descending=True)]
        rest = [int(i) for i in retriever[row].argsort(descending=True) if int(i) not in chosen]
        assert merged[row].argsort(descending=True).tolist() == chosen + rest


def test_top_candidates_skip_masked_and_unscorable_items():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0], [1.0, float("nan"), float("-inf"), 2.0, 0.5]])
    exclude = torch.tensor([[True, False, True, False, False], [False, False, False, True, False]])
    assert top_candidates(scores, exclude, 3).tolist() == [[1, 3, 4], [0, 4, -1]]


def test_candidate_orders_are_seeded_per_user_whatever_the_batching():
    users = torch.arange(12)
    whole = candidate_orders(7, users, 20, 0)
    assert torch.equal(whole, torch.cat([candidate_orders(7, users[:5], 20, 0), candidate_orders(7, users[5:], 20, 0)]))
    assert torch.equal(whole.sort(dim=1).values, torch.arange(20).expand(12, -1))
    assert not torch.equal(whole, candidate_orders(8, users, 20, 0))
    assert not torch.equal(whole, candidate_orders(7, users, 20, 1))


class _FixedScores:
    """A stand-in reranker: each (user, item) has a fixed score, whatever order the items are shown in."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table
        self.users: torch.Tensor | None = None

    def yes_no_logits(self, history: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return self.table[self.users.unsqueeze(1), candidates]


def test_yes_no_candidate_auc_is_the_library_auc_and_independent_of_the_shown_order():
    from sklearn.metrics import roc_auc_score

    generator = torch.Generator().manual_seed(3)
    users, items, size = torch.arange(6), 40, 8
    table = torch.randn(len(users), items, generator=generator)
    candidates = torch.stack([torch.randperm(items, generator=generator)[:size] for _ in users])
    targets = torch.zeros(len(users), items, dtype=torch.bool)
    targets[torch.arange(6), candidates[:, 2]] = True
    targets[0, candidates[0, 5]] = True  # two held-out items for one user
    batch = {
        "users": users, "targets": targets, "exclude": torch.zeros_like(targets), "candidates": candidates,
        "history": torch.full((6, 3), -1), "retriever_scores": torch.randn(6, items, generator=generator),
        "split": "test",
    }  # fmt: skip
    model = _FixedScores(table)
    model.users = users
    values = {}
    for order in ("shuffled", "retriever"):
        task = RerankTask(retriever="unused", candidates=size, scoring="yes_no", order=order, ks=[5])
        task.record_rows(True)
        metrics = task.evaluation_metrics("test")
        task.update_metrics(metrics, model, batch)
        values[order] = task.per_user_rows(metrics)[f"candidates{size}/auc"]
    for row in range(6):
        labels = targets[row, candidates[row]].numpy()
        expected = roc_auc_score(labels, table[row, candidates[row]].numpy())
        assert values["shuffled"][row] == pytest.approx(expected, abs=1e-6)
        assert values["retriever"][row] == pytest.approx(expected, abs=1e-6)


# -- runs: a retriever, a zero-shot and a tuned reranker on a slice of the bundled data ------------------------------
SLICE = ["data.max_users=30", "data.split.strategy=temporal_loo", "logger=csv", "seed=0"]


def _trained(overrides: list[str], out: Path, cache: Path) -> Path:
    cfg = compose_train([*SLICE, *overrides], out, cache)
    (out / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create([*SLICE, *overrides]), out / ".hydra" / "overrides.yaml")  # as Hydra records them
    train(cfg, out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_lm: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rerank-runs")
    cache = root / "cache"
    retriever = _trained(["task=ranking", "model=ease"], root / "ease", cache)
    lm = [f"model.encoder.name_or_path={tiny_lm}", "model.encoder.gguf_file=null", "model.prompt.chat=false"]
    rerank = ["experiment=rerank", f"task.retriever={retriever}", *lm, "task.candidates=8", "task.ks=[5,10]"]
    zero_shot = _trained(rerank, root / "zero-shot", cache)
    tuned = _trained(
        [*rerank, "model/tuning=lora", "task.scoring=yes_no", "model.prompt.answer_yes=Y",
         "model.prompt.answer_no=N", "trainer.limit_train_batches=2", "task.history=3"],
        root / "tuned", cache,
    )  # fmt: skip
    return {"ease": retriever, "zero-shot": zero_shot, "tuned": tuned, "cache": cache}


def test_cached_candidates_are_computed_once_and_never_an_item_the_user_has(runs):
    from lmrec.serving.candidates import retrieved_candidates
    from tests.helpers import prepared_data

    entries = [p for p in (runs["cache"] / "candidates").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1  # the zero-shot and the tuned run read one entry
    retrieved = retrieved_candidates(runs["ease"], 8, runs["cache"])
    cfg = OmegaConf.load(runs["zero-shot"] / ".hydra" / "config.yaml")
    splits = prepared_data(cfg).splits
    retrieved.check_matches(splits)
    for split, seen in (("val", splits.matrix("train")), ("test", splits.matrix("train", "val"))):
        top = retrieved.top[split]
        assert bool((top >= 0).all())
        assert not bool(seen.dense_rows(torch.arange(splits.num_users)).gather(1, top).any())
        masked = retrieved.scores[split].masked_fill(seen.dense_rows(torch.arange(splits.num_users)), float("-inf"))
        assert torch.equal(masked.topk(8, dim=1).indices, top)  # the retriever's own best, in its order


def test_a_rerank_run_reports_the_retriever_beside_it_and_reevaluates_equal(runs, tmp_path):
    metrics = json.loads((runs["zero-shot"] / "metrics.json").read_text())
    ease = json.loads((runs["ease"] / "metrics.json").read_text())
    assert metrics["test/retriever/ndcg@10"] == pytest.approx(ease["test/ndcg@10"], abs=1e-6)
    # The top 10 holds the 8 candidates (reordered) and the retriever's 9th and 10th: the same set as its own.
    assert metrics["test/recall@10"] == pytest.approx(metrics["test/retriever/recall@10"], abs=1e-6)
    assert metrics["test/cost/prompt_tokens_per_user"] > 50 and metrics["test/cost/seconds_per_1k_users"] > 0
    info = json.loads((runs["zero-shot"] / "run.json").read_text())
    assert info["params"]["trainable"] == 0
    cache = runs["cache"]
    args = [f"run={runs['zero-shot']}", f"hydra.run.dir={tmp_path / 'eval'}", f"paths.cache_dir={cache}"]
    run_cli("lmrec-eval", args, home=tmp_path)
    evaluated = json.loads((tmp_path / "eval" / "eval_metrics.json").read_text())
    for key in ("test/ndcg@10", "test/candidates8/ndcg@5", "test/retriever/ndcg@10", "test/candidates8/auc"):
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-6), key


def test_a_tuned_yes_no_reranker_trains_its_adapters_only(runs):
    info = json.loads((runs["tuned"] / "run.json").read_text())
    assert 0 < info["params"]["trainable"] < info["params"]["total"]
    cost = info["task_cost"]  # the fit's figures survive the test pass
    assert cost["train/cost/seconds_per_step"] > 0 and cost["val/cost/seconds_per_1k_users"] > 0
    metrics = json.loads((runs["tuned"] / "metrics.json").read_text())
    assert 0.0 <= metrics["test/candidates8/auc"] <= 1.0
    saved = torch.load(runs["tuned"] / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert saved and all("lora_" in key for key in saved)  # the LM's own weights are the model files'


def test_a_retriever_on_another_split_is_refused(runs, tmp_path, tiny_lm):
    cfg = compose_train(
        ["data.max_users=20", "data.split.strategy=temporal_loo", "logger=csv", "experiment=rerank",
         f"task.retriever={runs['ease']}", f"model.encoder.name_or_path={tiny_lm}", "model.encoder.gguf_file=null",
         "model.prompt.chat=false", "task.candidates=8"],
        tmp_path / "out", runs["cache"],
    )  # fmt: skip
    with pytest.raises(ConfigError, match="another split"):
        train(cfg, tmp_path / "out")
    missing = compose_train([*SLICE, "experiment=rerank", f"task.retriever={tmp_path / 'nothing'}"], tmp_path, tmp_path)
    with pytest.raises(ConfigError, match="task.retriever="):
        train(missing, tmp_path / "out2")
    with pytest.raises(ConfigError, match="cannot load a retriever"):  # lmrec-data, which cannot load another run
        build_data(missing)


def test_lmrec_compare_pairs_a_reranker_with_its_retriever_user_by_user(runs):
    import pandas as pd

    from lmrec.compare.api import compare
    from lmrec.compare.report import cost_table

    comparison = compare([runs["ease"], runs["zero-shot"]], metrics=["ndcg@10"])
    assert len(comparison.pairs) == 1
    costs = {c["label"]: c["cost"] for c in comparison.as_dict()["configurations"]}
    reranker = next(cost for label, cost in costs.items() if "rerank" in label)
    info = json.loads((runs["zero-shot"] / "run.json").read_text())
    assert reranker["prompt_tokens_per_user"] == info["task_cost"]["test/cost/prompt_tokens_per_user"] > 0
    assert "prompt tokens/user" in cost_table(comparison.as_dict())
    reranked = pd.read_parquet(runs["zero-shot"] / "per_user" / "test.parquet").set_index("user_id")
    retriever = pd.read_parquet(runs["ease"] / "per_user" / "test.parquet").set_index("user_id")
    # The rerank run's own retriever column is the retriever run's metric, user by user.
    joined = reranked[["retriever/ndcg@10"]].join(retriever[["ndcg@10"]], how="inner")
    assert len(joined) == len(retriever)
    assert (joined["retriever/ndcg@10"] - joined["ndcg@10"]).abs().max() < 1e-6


class _PositionBiased:
    """A stand-in choice model: each item's own score plus a bonus for the position it is shown at."""

    def __init__(self, table: torch.Tensor, bonus: torch.Tensor) -> None:
        self.table, self.bonus, self.users = table, bonus, None

    def choice_logits(self, history: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
        return self.table[self.users.unsqueeze(1), shown] + self.bonus


def test_scores_are_averaged_over_the_shown_orders_and_mapped_back_to_each_candidate():
    generator = torch.Generator().manual_seed(5)
    users, size = torch.arange(4), 6
    table, bonus = torch.randn(4, 30, generator=generator), torch.linspace(3.0, 0.0, size)
    candidates = torch.stack([torch.randperm(30, generator=generator)[:size] for _ in users])
    model = _PositionBiased(table, bonus)
    model.users = users
    task = RerankTask(retriever="unused", candidates=size, permutations=3, seed=11, ks=[1])
    scores, top = task.candidate_scores(model, users, torch.full((4, 2), -1), candidates)
    expected = torch.zeros(4, size)
    for p in range(3):
        order = candidate_orders(11, users, size, p)
        shown = candidates.gather(1, order)
        expected.scatter_add_(1, order, (table[users.unsqueeze(1), shown] + bonus).log_softmax(dim=1))
    assert scores == pytest.approx(expected / 3, abs=1e-6)
    first = candidate_orders(11, users, size, 0)
    shown_first = (table[users.unsqueeze(1), candidates.gather(1, first)] + bonus).argmax(dim=1)
    assert torch.equal(top, shown_first.float())  # where in the prompt the top choice sat, in the first order
    # Shown in the retriever's order, every user's candidates get the same bonuses by position: the ranking is the
    # items' own scores plus the bonus of where each one sits.
    fixed = RerankTask(retriever="unused", candidates=size, order="retriever", ks=[1])
    biased, _ = fixed.candidate_scores(model, users, torch.full((4, 2), -1), candidates)
    own = table[users.unsqueeze(1), candidates]
    assert biased == pytest.approx((own + bonus).log_softmax(dim=1), abs=1e-6)


def test_training_rows_show_each_target_among_the_retrievers_other_candidates_after_its_history():
    from lmrec.data.sequences import UserSequences
    from lmrec.tasks.rerank_rows import RerankTrainRows

    # user 0: items 10, 11, 12, 13 (oldest first); user 1: 20, 21; user 2: one item, nothing to predict
    sequences = UserSequences(torch.tensor([0, 4, 6, 7]), torch.tensor([10, 11, 12, 13, 20, 21, 30]), 40)
    top = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 8, 9, 1], [1, 2, 3, 4, 5]])  # never a training item
    rows = RerankTrainRows(sequences, top, history=2, size=4, seed=0, per_user=2)
    assert len(rows) == 3  # user 0 twice (targets 13, 12), user 1 once (target 21)
    batch = rows.__getitems__(list(range(3)))
    shown, target = batch["candidates"], batch["target"]
    chosen = shown[torch.arange(3), target].tolist()
    users = batch["users"].tolist()
    assert sorted(zip(users, chosen, strict=True)) == [(0, 12), (0, 13), (1, 21)]
    histories = {(u, t): h for u, t, h in zip(users, chosen, batch["history"].tolist(), strict=True)}
    assert histories == {(0, 13): [11, 12], (0, 12): [10, 11], (1, 21): [-1, 20]}
    for row, user in zip(shown.tolist(), users, strict=True):
        others = sorted(i for i in row if i not in (12, 13, 21))
        assert others == sorted(top[user, :3].tolist())  # the retriever's 3 best
