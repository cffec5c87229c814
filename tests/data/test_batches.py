"""The map-style datasets tasks build their batches from."""

from __future__ import annotations

import pytest
import torch


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
