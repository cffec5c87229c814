"""Explanations: exact contributions add up to the model's score; leave-one-out and `none` say what they are."""

from __future__ import annotations

import pytest
import torch

from lmrec.serving.recommender import load


@pytest.fixture(scope="module")
def recommenders(trained_runs):
    return {family: load(folder) for family, folder in trained_runs.items()}


@pytest.mark.parametrize("family", ["ease", "itemknn", "history", "text"])
def test_exact_contributions_sum_to_the_score(recommenders, family):
    rec = recommenders[family]
    for user in range(3):
        item = rec.recommend(user=rec.users[user], k=1)[0].item_id
        answer = rec.explain(item=item, user=rec.users[user])
        assert answer["method"] == "exact"
        total = sum(c["contribution"] for c in answer["contributions"]) + answer["constant"]
        assert total == pytest.approx(answer["score"], rel=1e-4, abs=1e-5)
        assert answer["score"] == pytest.approx(rec.recommend(user=rec.users[user], k=1)[0].score, rel=1e-6)
        assert "not causes" in answer["note"]
    history = [rec.item_id(i) for i in (3, 8, 21)]
    answer = rec.explain(item=rec.item_id(40), history=history)
    assert sorted(c["item_id"] for c in answer["contributions"]) == sorted(history)
    total = sum(c["contribution"] for c in answer["contributions"]) + answer["constant"]
    assert total == pytest.approx(float(rec.history_scores([torch.tensor([3, 8, 21])])[0, 40]), rel=1e-4, abs=1e-5)


def test_ease_contributions_are_the_weights_of_b(recommenders):
    rec = recommenders["ease"]
    answer = rec.explain(item=rec.item_id(40), history=[rec.item_id(3), rec.item_id(8)])
    weights = rec.model.baseline.weights
    by_item = {c["item_id"]: c["contribution"] for c in answer["contributions"]}
    assert by_item[rec.item_id(3)] == pytest.approx(float(weights[3, 40]))
    assert by_item[rec.item_id(8)] == pytest.approx(float(weights[8, 40]))


def test_the_sequence_tower_is_explained_by_leaving_each_item_out(recommenders):
    rec = recommenders["sequence"]
    history = torch.tensor([5, 9, 14, 30])
    answer = rec.explain(item=rec.item_id(2), history=[rec.item_id(i) for i in history.tolist()])
    assert answer["method"] == "leave-one-out" and "constant" not in answer
    full = float(rec.history_scores([history])[0, 2])
    for c in answer["contributions"]:
        rest = history[history != rec.item_index(c["item_id"])]
        assert c["contribution"] == pytest.approx(full - float(rec.history_scores([rest])[0, 2]), abs=1e-5)


@pytest.mark.parametrize(("family", "reason"), [("mf", "one vector per training user"), ("pop", "does not read")])
def test_models_without_history_evidence_say_so(recommenders, family, reason):
    rec = recommenders[family]
    answer = rec.explain(item=rec.item_id(0), user=rec.users[0])
    assert answer["method"] == "none" and reason in answer["reason"] and answer["contributions"] == []
