"""`lmrec.serving`: what a trained run recommends equals what its evaluation ranked; new users, neighbours."""

from __future__ import annotations

import pytest
import torch

from lmrec.errors import RequestError
from lmrec.serving.explain import training_history
from lmrec.serving.recommender import load
from tests.serving.conftest import FAMILIES


@pytest.fixture(scope="module")
def recommenders(trained_runs):
    return {family: load(folder) for family, folder in trained_runs.items()}


def evaluation_top_k(rec, k: int) -> dict[int, list[int]]:
    """The reference, computed the evaluation's way: each test batch from the datamodule's own test loader,
    scored by the task's `eval_scores`, with the batch's own `exclude` mask, then its top k item rows."""
    rec.prepare()
    out = {}
    with torch.inference_mode():
        for batch in rec.loaded.datamodule.test_dataloader():
            scores = rec.loaded.task.eval_scores(rec.model, batch).float()
            scores[batch["exclude"]] = -torch.inf
            top = torch.topk(scores, k).indices
            out.update({int(u): top[row].tolist() for row, u in enumerate(batch["users"])})
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_a_known_user_gets_the_top_k_the_evaluation_ranked(recommenders, family):
    rec = recommenders[family]
    reference = evaluation_top_k(rec, 10)
    assert len(reference) >= 10
    for user, expected in list(reference.items())[:10]:
        served = rec.recommend(user=rec.users[user], k=10)
        assert [rec.item_index(r.item_id) for r in served] == expected, (family, user)
    batch = rec.recommend_many([rec.users[u] for u in list(reference)[:5]], k=10)
    assert [[rec.item_index(r.item_id) for r in rows] for rows in batch] == list(reference.values())[:5]


@pytest.mark.parametrize("family", ["ease", "itemknn", "history", "sequence", "text"])
def test_a_new_user_with_a_known_users_history_gets_their_scores(recommenders, family):
    """Models without per-user parameters: a history given by ids is scored as the training user with that
    history (up to the training user's own bias, a constant per user)."""
    rec = recommenders[family]
    for user in range(3):
        history = training_history(rec, user)
        known = rec.user_scores(torch.tensor([user]))[0]
        new = rec.history_scores([history])[0]
        head = getattr(rec.model, "head", None)
        if head is not None and getattr(head, "biases", False):
            known = known - head.user_bias.weight[user, 0]
        assert torch.allclose(known, new, atol=1e-5, rtol=1e-4), family
        ids = [rec.item_id(i) for i in history.tolist()]
        served = rec.recommend(history=ids, k=5)
        assert not {r.item_id for r in served} & set(ids)  # the history is masked as seen


def test_als_folds_a_new_user_in_as_implicit_recalculates_one(recommenders):
    """The reference: implicit's own `recalculate_user` (exact solver) against the run's item factors."""
    from implicit.cpu.als import AlternatingLeastSquares

    from lmrec.model.baselines.base import scipy_matrix

    rec = recommenders["als"]
    baseline = rec.model.baseline
    options = {k: baseline.options[k] for k in ("factors", "regularization", "alpha")}
    reference = AlternatingLeastSquares(**options, use_cg=False, use_native=True)
    reference.item_factors = baseline.item_factors.numpy().astype("float32")
    reference.user_factors = baseline.user_factors.numpy().astype("float32")
    items = scipy_matrix(baseline.history).astype("float32").tocsr()
    for user in range(3):
        factors = reference.recalculate_user(user, items[user])
        expected = torch.from_numpy(factors.reshape(-1) @ reference.item_factors.T)
        new = rec.history_scores([training_history(rec, user)])[0]
        assert torch.allclose(new, expected.float(), atol=1e-4), user


def test_a_model_with_per_user_parameters_says_why_it_cannot_serve_a_new_user(recommenders):
    with pytest.raises(RequestError, match="cannot serve a user it never trained on: it learns one vector per"):
        recommenders["mf"].recommend(history=[recommenders["mf"].item_id(0)])


def test_requests_that_cannot_be_answered_are_one_line_errors(recommenders):
    rec = recommenders["ease"]
    user = rec.users[0]
    cases = [
        (dict(user="no-such-user"), "is not a user of this run's data"),
        (dict(history=["no-such-item"]), "is not an item of this run's catalogue"),
        (dict(user=user, k=0), "expected a whole number from 1 to 1000"),
        (dict(user=user, k=True), "expected a whole number from 1 to 1000"),
        (dict(user=user, history=[rec.item_id(0)]), "give exactly one of user, history or text"),
        (dict(), "got none"),
        (dict(text="a film"), "scores users from their items, not from a text"),
        (dict(history=[]), "expected 1 to 10000"),
    ]
    for request, message in cases:
        with pytest.raises(RequestError, match=message):
            rec.recommend(**request)
    with pytest.raises(RequestError, match="no item neighbours"):
        recommenders["pop"].similar(item=rec.item_id(0))
    with pytest.raises(RequestError, match="has no text item tower"):
        recommenders["history"].similar(text="space")


def test_ids_are_read_as_the_data_writes_them(recommenders):
    rec = recommenders["ease"]
    user = rec.users[0]
    as_text = rec.recommend(user=str(user), k=3)
    assert as_text == rec.recommend(user=user, k=3)


def test_candidates_and_seen_items(recommenders):
    rec = recommenders["history"]
    user = rec.users[0]
    seen = set(rec.seen_items(0).tolist())
    everything = rec.recommend(user=user, k=1000, exclude_seen=False)
    assert {rec.item_index(r.item_id) for r in everything} & seen  # seen items are ranked when asked
    masked = rec.recommend(user=user, k=1000)
    assert not {rec.item_index(r.item_id) for r in masked} & seen
    candidates = [r.item_id for r in everything[-5:]]
    ranked = rec.recommend(user=user, candidates=candidates, k=10, exclude_seen=False)
    assert sorted(r.item_id for r in ranked) == sorted(candidates) and len(ranked) == 5
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_similar_items_are_the_item_space_neighbours(recommenders):
    rec = recommenders["history"]
    vectors = torch.nn.functional.normalize(rec.model.all_item_vectors(), dim=1)
    expected = torch.topk(vectors @ vectors[4], 4).indices.tolist()
    expected = [i for i in expected if i != 4][:3]
    assert [rec.item_index(r.item_id) for r in rec.similar(item=rec.item_id(4), k=3)] == expected
    ease = recommenders["ease"]
    weights = ease.model.baseline.weights[7].clone()
    weights[7] = -torch.inf
    assert [ease.item_index(r.item_id) for r in ease.similar(item=ease.item_id(7), k=3)] == torch.topk(
        weights, 3
    ).indices.tolist()


def test_a_text_is_read_by_the_runs_encoder_as_a_new_item(recommenders):
    rec = recommenders["text"]
    texts = rec.loaded.datamodule.item_texts
    found = rec.similar(text=texts[5], k=3)
    assert rec.item_index(found[0].item_id) == 5  # an item's own text finds the item
    assert found[0].score == pytest.approx(1.0, abs=1e-4)
    served = rec.recommend(text=texts[5], k=5)  # the history tower reads the text as a one-item history
    history = rec.recommend(history=[rec.item_id(5)], k=6, exclude_seen=False)
    assert [r.item_id for r in served] == [r.item_id for r in history][:5]
