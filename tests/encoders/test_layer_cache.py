"""The frozen-layer cache on disk: keyed by what makes the states, computed once per entry, verified on read."""

from __future__ import annotations

import logging
import threading

import pytest
import torch

from lmrec.encoders.layer_cache import LAYER_CACHE, cached_bottom_states, layer_states_key, run_bottom

IDS = torch.randint(0, 1000, (6, 9), generator=torch.Generator().manual_seed(0))
LENGTHS = torch.tensor([9, 3, 5, 1, 9, 7])


class Counted:
    """A compute function that counts its calls and returns states that depend on nothing but its seed."""

    def __init__(self, seed: int = 0, dtype: torch.dtype = torch.float32) -> None:
        self.calls, self.seed, self.dtype = 0, seed, dtype

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        generator = torch.Generator().manual_seed(self.seed)
        states = torch.randn(int(LENGTHS.sum()), 8, generator=generator).to(self.dtype)
        return states, torch.cumsum(LENGTHS, 0) - LENGTHS


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_states_are_computed_once_and_read_back_bit_for_bit(tmp_path, dtype, caplog):
    compute = Counted(dtype=dtype)
    states, starts, hit = cached_bottom_states(tmp_path, "k", compute)
    with caplog.at_level(logging.INFO, logger="lmrec.encoders.layer_cache"):
        again, again_starts, hit_again = cached_bottom_states(tmp_path, "k", compute)
    assert (hit, hit_again, compute.calls) == (False, True, 1) and "frozen-layer cache hit" in caplog.text
    assert again.dtype == dtype and torch.equal(again, states) and torch.equal(again_starts, starts)
    assert sorted(p.name for p in (tmp_path / LAYER_CACHE / "k").iterdir()) == ["manifest.json", "states.safetensors"]


def test_the_states_of_a_real_bottom_round_trip(tiny_bert_dir, tmp_path):
    from transformers import BertModel

    model = BertModel.from_pretrained(tiny_bert_dir).eval()
    mask = torch.arange(IDS.shape[1]) < LENGTHS.unsqueeze(1)

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return run_bottom(model, IDS, mask.long(), 1)[mask], torch.cumsum(LENGTHS, 0) - LENGTHS

    with torch.no_grad():
        reference = model(input_ids=IDS, attention_mask=mask.long(), output_hidden_states=True).hidden_states[1]
    key = layer_states_key("w", 1, IDS, LENGTHS, dtype="float32", device="cpu")
    cached_bottom_states(tmp_path, key, compute)
    states, starts, hit = cached_bottom_states(tmp_path, key, compute)
    assert hit and torch.allclose(states, reference[mask], atol=1e-5)
    assert torch.equal(starts, torch.tensor([0, 9, 12, 17, 18, 27]))


def test_the_key_changes_with_everything_that_changes_the_states():
    base = layer_states_key("w", 2, IDS, LENGTHS, dtype="float32", device="cpu")
    changed_ids = IDS.clone()
    changed_ids[0, 0] += 1
    variants = [
        layer_states_key("v", 2, IDS, LENGTHS, dtype="float32", device="cpu"),
        layer_states_key("w", 3, IDS, LENGTHS, dtype="float32", device="cpu"),
        layer_states_key("w", 2, changed_ids, LENGTHS, dtype="float32", device="cpu"),
        layer_states_key("w", 2, IDS, LENGTHS - (LENGTHS > 1).long(), dtype="float32", device="cpu"),
        layer_states_key("w", 2, IDS, LENGTHS, dtype="bfloat16", device="cpu"),
        layer_states_key("w", 2, IDS, LENGTHS, dtype="float32", device="cuda"),
    ]
    assert base == layer_states_key("w", 2, IDS.clone(), LENGTHS.clone(), device="cpu", dtype="float32")
    assert len({base, *variants}) == 1 + len(variants)


def test_without_a_cache_folder_nothing_is_stored(tmp_path):
    compute = Counted()
    cached_bottom_states(None, "k", compute)
    assert cached_bottom_states(None, "k", compute)[2] is False and compute.calls == 2


def test_an_interrupted_entry_is_recomputed(tmp_path, caplog):
    compute = Counted()
    first, _, _ = cached_bottom_states(tmp_path, "k", compute)
    (tmp_path / LAYER_CACHE / "k" / "manifest.json").unlink()
    with caplog.at_level(logging.WARNING, logger="lmrec.cache_integrity"):
        states, _, hit = cached_bottom_states(tmp_path, "k", compute)
    assert not hit and compute.calls == 2 and torch.equal(states, first) and "manifest.json is missing" in caplog.text
    assert cached_bottom_states(tmp_path, "k", compute)[2]


def test_two_jobs_needing_the_same_states_compute_them_once(tmp_path):
    compute = Counted()
    gate = threading.Barrier(2)
    results = []

    def job() -> None:
        gate.wait()
        results.append(cached_bottom_states(tmp_path, "k", compute))

    threads = [threading.Thread(target=job) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert compute.calls == 1 and sorted(hit for *_, hit in results) == [False, True]
    assert torch.equal(results[0][0], results[1][0])


def test_partial_tuning_keeps_frozen_layer_states_on_disk_when_asked(tmp_path, tiny_bert_dir, caplog):
    """model.tuning.layer_cache_on_disk=true: the first model computes and stores the frozen layers' output, a
    second one (a later run) reads it, and both give the same item vectors."""
    import logging

    from tests.helpers import build_model, compose_train, prepared_data

    overrides = [
        "data.max_users=15",
        "task=ranking",
        "model/tuning=partial",
        "model.tuning.method.frozen_layers=1",
        "model.tuning.layer_cache_on_disk=true",
        f"model.encoder.name_or_path={tiny_bert_dir}",
        "model.encoder.max_length=16",
    ]
    vectors = []
    for _ in range(2):
        cfg = compose_train(overrides, tmp_path / "out", tmp_path / "cache")
        datamodule = prepared_data(cfg)
        model = build_model(cfg, datamodule, datamodule.task)
        model.eval()
        with caplog.at_level(logging.INFO, logger="lmrec"), torch.no_grad():
            vectors.append(model.item_tower.text(torch.arange(5)))  # the encoder: no random projection
    assert list((tmp_path / "cache" / LAYER_CACHE).iterdir())
    assert "frozen-layer cache hit" in caplog.text
    torch.testing.assert_close(vectors[0], vectors[1])
