"""The map-style datasets tasks build their batches from."""

from __future__ import annotations

import pytest
import torch

from lmrec.data.sparse import CSRMatrix


def test_negative_sampling_is_uniform_over_non_positives():
    from lmrec.data.batches import NegativeSampledBatches

    users = torch.tensor([0, 0, 0, 1, 2, 2])
    items = torch.tensor([0, 2, 3, 5, 1, 4])
    sampler = NegativeSampledBatches(users, items, num_items=6, num_negatives=20000)
    torch.manual_seed(0)
    draws = sampler.sample(torch.tensor([0, 1, 2]))
    for user, allowed in enumerate([{1, 4, 5}, {0, 1, 2, 3, 4}, {0, 2, 3, 5}]):
        counts = torch.bincount(draws[user], minlength=6).float() / 20000
        assert set(torch.nonzero(counts).squeeze(1).tolist()) == allowed
        assert torch.allclose(counts[sorted(allowed)], torch.full((len(allowed),), 1 / len(allowed)), atol=0.02)
    with pytest.raises(ValueError, match="every item"):
        NegativeSampledBatches(torch.tensor([0, 0]), torch.tensor([0, 1]), num_items=2, num_negatives=1)


class _Twice:
    """A picklable batch extra: one entry per user."""

    def __call__(self, users: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"twice": users * 2}


def test_ranking_eval_batches_carry_split_and_extras():
    import pickle

    from lmrec.data.batches import RankingEvalBatches

    targets = CSRMatrix.from_pairs(torch.tensor([1, 2, 2]), torch.tensor([0, 1, 3]), (3, 4))
    exclude = CSRMatrix.from_pairs(torch.tensor([1]), torch.tensor([2]), (3, 4))
    dataset = RankingEvalBatches(targets, exclude, split="val", extras=[_Twice()])
    batch = pickle.loads(pickle.dumps(dataset)).__getitems__([0, 1])  # workers receive a pickled copy
    assert batch["users"].tolist() == [1, 2] and batch["split"] == "val" and batch["twice"].tolist() == [2, 4]
    assert batch["targets"].tolist() == [[True, False, False, False], [False, True, False, True]]
    assert batch["exclude"].tolist() == [[False, False, True, False], [False, False, False, False]]
    assert set(RankingEvalBatches(targets, exclude).__getitems__([0])) == {"users", "targets", "exclude"}
