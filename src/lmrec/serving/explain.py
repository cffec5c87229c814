"""The evidence behind one score: how much each history item contributes to it.

These are contributions to a score, not causes of a preference. Three kinds, named in every answer:

- `exact`: the score is a sum over the history plus a constant, and the contributions are those terms (EASE and
  ease_text: B[j, i]; ItemKNN: sim(i, j); the history tower with a dot head: <W v_j / n, v_i>, with the
  projection's bias and the head's biases in the constant). They add up to the score.
- `leave-one-out`: the score minus the score of the history without that item (the sequence tower, ALS's fold-in).
  They do not add up to the score: the model is not a sum.
- `none`: the model has no per-item evidence (an ID user tower learns one vector per user; popularity and the
  rating biases do not read the history; a text user tower reads the user's text); the answer says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from lmrec.errors import RequestError

if TYPE_CHECKING:
    from lmrec.serving.recommender import Recommender

NOTE = "contributions to this model's score, not causes of the user's preference"


def explain(rec: Recommender, item: int, user: Any, history: Sequence[Any] | None) -> dict[str, Any]:
    """The explanation of `item`'s score for a training user or a user given by `history`."""
    user_index = rec.user_index(user) if user is not None else None
    items = rec.history_indices(history) if history is not None else training_history(rec, user_index)
    if user_index is not None:
        score = float(rec.user_scores(torch.tensor([user_index]))[0, item])
    else:
        score = float(rec.history_scores([items])[0, item])
    answer: dict[str, Any] = {"item": rec.item_id(item), "title": rec.titles[item], "score": score}
    reason = no_evidence(rec)
    if reason is not None or items is None or len(items) == 0:
        return {**answer, "method": "none", "reason": reason or "the user has no history items", "contributions": []}
    exact = exact_terms(rec, items, item, user_index)
    if exact is not None:
        terms, constant = exact
        method, extra = "exact", {"constant": constant}
    else:
        terms, method, extra = leave_one_out(rec, items, item), "leave-one-out", {}
    rows = [
        {"item_id": rec.item_id(j), "title": rec.titles[int(j)], "contribution": float(c)}
        for j, c in zip(items.tolist(), terms.tolist(), strict=True)
    ]
    rows.sort(key=lambda row: -abs(row["contribution"]))
    return {**answer, "method": method, **extra, "note": NOTE, "contributions": rows}


def training_history(rec: Recommender, user: int | None) -> torch.Tensor | None:
    """The items a training user's score reads, oldest first where the model reads an order."""
    if user is None:
        return None
    model = rec.model
    folded = rec.test_inputs(torch.tensor([user]))
    if "history_items" in folded and getattr(model, "reads_history", False):  # task.fold_validation
        return folded["history_items"]
    baseline = getattr(model, "baseline", None)
    if baseline is not None and hasattr(baseline, "history"):
        matrix = baseline.history
        return matrix.col[matrix.crow[user] : matrix.crow[user + 1]].clone()
    tower = getattr(model, "user_tower", None)
    if getattr(tower, "reads_sequences", False):
        sequence = rec.test_inputs(torch.tensor([user])).get("sequences")
        if sequence is not None:
            return sequence[0][sequence[0] >= 0]
    if hasattr(tower, "crow"):  # the history tower's training matrix
        return tower.col[tower.crow[user] : tower.crow[user + 1]].clone()
    return None


def no_evidence(rec: Recommender) -> str | None:
    """Why the model's score has no per-history-item evidence, or None when it has."""
    model = rec.model
    baseline = getattr(model, "baseline", None)
    if baseline is not None:
        return None if baseline.uses_history else f"{type(baseline).__name__}'s score does not read the history"
    tower = getattr(model, "user_tower", None)
    if tower is None or tower.new_users is not None:
        why = tower.new_users if tower is not None else "it has no user tower"
        return f"the score has no per-item evidence: {why}"
    return None


def exact_terms(
    rec: Recommender, items: torch.Tensor, item: int, user: int | None
) -> tuple[torch.Tensor, float] | None:
    """(each history item's term, the constant) where the score is exactly their sum, else None."""
    model = rec.model
    baseline = getattr(model, "baseline", None)
    if baseline is not None:
        terms = baseline.contributions(items, item)
        return None if terms is None else (terms.float().cpu(), 0.0)
    tower, head = model.user_tower, model.head
    if not (hasattr(tower, "additive_terms") and getattr(head, "linear_in_user", False)):
        return None
    with torch.inference_mode():
        vectors = model.all_item_vectors()
        terms, bias = tower.additive_terms(vectors[items])
        target = vectors[item]
        return terms @ target, float(bias @ target) + head.constant(item, user)


def leave_one_out(rec: Recommender, items: torch.Tensor, item: int) -> torch.Tensor:
    """score(history) - score(history without j), for each j, in one batch."""
    if len(items) > 500:
        raise RequestError(f"leave-one-out explains at most 500 history items; this history has {len(items)}")
    keep = ~torch.eye(len(items), dtype=torch.bool)
    histories = [items] + [items[keep[j]] for j in range(len(items))]
    scores = rec.history_scores(histories)[:, item]
    return scores[0] - scores[1:]
