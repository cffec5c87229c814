"""Sequential recommendation: chronological sequences, the causal sequence tower, and the next-item task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from lmrec.data.interactions import InteractionSplits
from lmrec.data.processed import ProcessedData
from lmrec.data.sequences import PAD, UserSequences, sequences_of, training_windows
from lmrec.data.splits import temporal_leave_one_out
from lmrec.errors import ConfigError
from lmrec.model.heads import DotHead
from lmrec.model.item_towers import IdItemTower
from lmrec.model.module import RecommenderModule
from lmrec.model.optimization import Optimization
from lmrec.model.sequence_tower import SequenceUserTower
from lmrec.model.user_towers import IdUserTower
from lmrec.tasks.next_item import NextItemTask

NUM_USERS, NUM_ITEMS = 6, 20


def _splits(seed: int = 0) -> InteractionSplits:
    """Each user: random items at random times (some equal); lmrec's temporal leave-one-out split."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(NUM_USERS):
        n = 3 + 2 * u
        items = rng.choice(NUM_ITEMS, size=n, replace=False)
        rows += [(u, int(i), int(t)) for i, t in zip(items, rng.integers(0, 2 * n, size=n), strict=True)]
    frame = pd.DataFrame(rows, columns=["user_idx", "item_idx", "timestamp"]).sample(frac=1.0, random_state=seed)
    frame = frame.reset_index(drop=True)
    frame["split"] = temporal_leave_one_out(frame["user_idx"].to_numpy(), frame["timestamp"].to_numpy())
    frame["rating"] = 4.0
    users = pd.DataFrame({"user_id": range(NUM_USERS)})
    return InteractionSplits(
        ProcessedData(frame.reset_index(drop=True), users, pd.DataFrame({"item_id": range(NUM_ITEMS)}))
    )


def _model(task, splits: InteractionSplits, dim: int = 8, layers: int = 1, dropout: float = 0.0) -> RecommenderModule:
    torch.manual_seed(0)
    tower = SequenceUserTower(sequences_of(splits, ("train",)), dim, max_length=task.max_length, layers=layers,
                              heads=2, inner=16, dropout=dropout)  # fmt: skip
    return RecommenderModule(
        item_tower=IdItemTower(NUM_ITEMS, dim, init_std=0.5),
        user_tower=tower,
        head=DotHead(NUM_USERS, NUM_ITEMS, biases=False),
        task=task,
        optimization=Optimization(lambda params: torch.optim.Adam(params)),
    )


def test_sequences_are_chronological_most_recent_last_and_left_padded():
    # user 0: items 5 (t=2), 3 (t=1), 7 (t=1, later row), 9 (t=4); user 1: item 4; user 2: nothing
    users = np.array([0, 0, 1, 0, 0])
    items = np.array([5, 3, 4, 7, 9])
    times = np.array([2, 1, 0, 1, 4])
    seq = UserSequences.from_arrays(users, items, times, num_users=3, num_items=10)
    assert seq.last(torch.tensor([0, 1, 2]), 3).tolist() == [[7, 5, 9], [PAD, PAD, 4], [PAD, PAD, PAD]]
    assert seq.last(torch.tensor([0]), 6).tolist() == [[PAD, PAD, 3, 7, 5, 9]]
    # a window ending before the last item (exclusive end 3): the two items before position 3
    assert seq.window(torch.tensor([0]), torch.tensor([3]), 2).tolist() == [[7, 5]]


def test_training_windows_make_every_item_after_the_first_a_target_once():
    lengths = torch.tensor([1, 2, 7, 12])
    users, ends = training_windows(lengths, max_length=4, every_window=True)
    windows = sorted(zip(users.tolist(), ends.tolist(), strict=True))
    assert windows == [(1, 2), (2, 3), (2, 7), (3, 4), (3, 8), (3, 12)]
    # each window of max_length + 1 items predicts positions end-4..end-1 (those with an earlier item in it)
    for user in (2, 3):
        targets = []
        for u, end in windows:
            if u == user:
                targets += [p for p in range(end - 4, end) if p >= max(1, end - 5 + 1)]
        assert sorted(targets) == list(range(1, int(lengths[user])))
    users, ends = training_windows(lengths, max_length=4, every_window=False)
    assert sorted(zip(users.tolist(), ends.tolist(), strict=True)) == [(1, 2), (2, 7), (3, 12)]


def test_training_rows_hold_only_training_items_and_predict_the_next_one():
    splits = _splits()
    task = NextItemTask(max_length=3)
    dataset = task.train_dataset(splits)
    batch = dataset.__getitems__(list(range(len(dataset))))
    train_users, train_items, _ = splits.tensors("train")
    train_pairs = set(zip(train_users.tolist(), train_items.tolist(), strict=True))
    held = {(u, i) for s in ("val", "test") for u, i in zip(*(t.tolist() for t in splits.tensors(s)[:2]), strict=True)}
    full = sequences_of(splits, ("train",))
    for row, user in enumerate(batch["users"].tolist()):
        for item in batch["inputs"][row].tolist():
            if item != PAD:
                assert (user, item) in train_pairs and (user, item) not in held
        chronological = full.items[full.crow[user] : full.crow[user + 1]].tolist()
        for column, target in enumerate(batch["targets"][row].tolist()):
            if target == PAD:
                continue
            assert (user, target) in train_pairs
            previous = batch["inputs"][row, column].item()
            assert chronological.index(target) == chronological.index(previous) + 1


def test_outputs_are_causal_position_t_ignores_later_items():
    splits = _splits()
    tower = SequenceUserTower(sequences_of(splits, ("train",)), 8, max_length=6, layers=2, heads=2, inner=16)
    tower.eval()
    items = IdItemTower(NUM_ITEMS, 8, init_std=0.5)
    sequences = torch.tensor([[PAD, PAD, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    changed = sequences.clone()
    changed[:, 4:] = torch.tensor([11, 12])
    outputs = []
    with torch.no_grad():
        for seq in (sequences, changed):
            lookup = tower.lookup_sequences(seq)
            outputs.append(tower.encode(lookup, items(lookup.items)))
    torch.testing.assert_close(outputs[0][:, :4], outputs[1][:, :4])
    assert not torch.allclose(outputs[0][:, 4:], outputs[1][:, 4:])
    assert torch.isfinite(outputs[0]).all()  # padding positions attend to nothing real and still stay finite
    # padding is invisible: the same items with or without padding in front give the same outputs
    with torch.no_grad():
        lookup = tower.lookup_sequences(torch.tensor([[PAD, PAD, 3, 4, 5, 6]]))
        padded = tower.encode(lookup, items(lookup.items))
        lookup = tower.lookup_sequences(torch.tensor([[3, 4, 5, 6]]))
        unpadded = tower.encode(lookup, items(lookup.items))
    torch.testing.assert_close(padded[:, 2:], unpadded)


@pytest.mark.parametrize("loss,negatives", [("softmax", "full"), ("softmax", "in_batch"), ("bce", "sampled")])
def test_next_item_loss_matches_a_hand_computation(loss, negatives):
    splits = _splits()
    task = NextItemTask(max_length=4, loss=loss, negatives=negatives, num_negatives=1, logq=False)
    model = _model(task, splits)
    model.eval()
    dataset = task.train_dataset(splits)
    torch.manual_seed(3)
    batch = dataset.__getitems__(list(range(len(dataset))))
    with torch.no_grad():
        loss_value = task.training_loss(model, batch)
        lookup = model.user_tower.lookup_sequences(batch["inputs"])
        states = model.user_tower.encode(lookup, model.item_tower(lookup.items))
        table = model.item_tower.all_items()
    terms, candidates = [], sorted({t for t in batch["targets"].flatten().tolist() if t != PAD})
    for row in range(len(batch["users"])):
        for t, target in enumerate(batch["targets"][row].tolist()):
            if target == PAD:
                continue
            u = states[row, t]
            if negatives == "full":
                logits = table @ u
                terms.append(-F.log_softmax(logits, 0)[target])
            elif negatives == "in_batch":
                logits = table[candidates] @ u
                terms.append(-F.log_softmax(logits, 0)[candidates.index(target)])
            else:
                negative = batch["negatives"][row, t, 0].item()
                terms.append((-F.logsigmoid(u @ table[target]), -F.logsigmoid(-(u @ table[negative]))))
    if negatives == "sampled":
        expected = torch.stack([p for p, _ in terms]).mean() + torch.stack([n for _, n in terms]).mean()
    else:
        expected = torch.stack(terms).mean()
    torch.testing.assert_close(loss_value, expected, rtol=1e-5, atol=1e-6)


def test_uniform_negatives_are_never_a_training_item_of_the_user():
    splits = _splits()
    task = NextItemTask(max_length=4, loss="bce", negatives="sampled", num_negatives=3)
    batch = task.train_dataset(splits).__getitems__(list(range(6)))
    users, items, _ = splits.tensors("train")
    pairs = set(zip(users.tolist(), items.tolist(), strict=True))
    assert batch["negatives"].shape == (*batch["targets"].shape, 3)
    for row, user in enumerate(batch["users"].tolist()):
        assert all((user, n) not in pairs for n in batch["negatives"][row].flatten().tolist())


@pytest.mark.parametrize("mask_history", [True, False])
def test_evaluation_reads_everything_before_the_split(mask_history):
    splits = _splits()
    task = NextItemTask(max_length=50, mask_history=mask_history, auc=[])
    before = {"val": ("train",), "test": ("train", "val")}
    for split in ("val", "test"):
        dataset = task.eval_dataset(splits, split)
        batch = dataset.__getitems__(list(range(len(dataset))))
        history = sequences_of(splits, before[split])
        for row, user in enumerate(batch["users"].tolist()):
            expected = history.items[history.crow[user] : history.crow[user + 1]].tolist()
            assert [i for i in batch["sequences"][row].tolist() if i != PAD] == expected
            assert batch["exclude"][row].sum().item() == (len(expected) if mask_history else 0)
        if split == "test":  # the validation item is the test input's most recent item
            val_users, val_items, _ = splits.tensors("val")
            last = dict(zip(val_users.tolist(), val_items.tolist(), strict=True))
            assert all(batch["sequences"][r, -1].item() == last[u] for r, u in enumerate(batch["users"].tolist()))


def test_eval_scores_come_from_the_given_sequence():
    splits = _splits()
    task = NextItemTask(max_length=5, auc=[])
    model = _model(task, splits)
    model.eval()
    batch = task.eval_dataset(splits, "test").__getitems__([0, 1])
    with torch.no_grad():
        scores = task.eval_scores(model, batch)
        lookup = model.user_tower.lookup_sequences(batch["sequences"])
        u = model.user_tower.encode(lookup, model.item_tower(lookup.items))[:, -1]
    torch.testing.assert_close(scores, u @ model.item_tower.all_items().T)


def test_the_sequence_tower_serves_the_ranking_task_from_training_sequences():
    splits = _splits()
    tower = SequenceUserTower(sequences_of(splits, ("train",)), 8, max_length=3, heads=2, inner=16)
    train = sequences_of(splits, ("train",))
    for user in range(NUM_USERS):
        expected = train.items[train.crow[user] : train.crow[user + 1]].tolist()[-3:]
        assert [i for i in tower.train_inputs[user].tolist() if i != PAD] == expected
    looked = tower.lookup(torch.tensor([2]))
    assert looked.items.shape == (1, 3)


def test_next_item_refuses_a_tower_that_cannot_read_sequences_and_bad_options():
    task = NextItemTask()
    with pytest.raises(ConfigError, match="sequence user tower"):
        task.check_components({"user_tower": IdUserTower(3, 4)})
    with pytest.raises(ConfigError, match="sequence user tower"):
        task.check_components(None)
    with pytest.raises(ConfigError, match="train_windows"):
        NextItemTask(train_windows="some")
    with pytest.raises(ConfigError, match="max_length"):
        NextItemTask(max_length=0)
    with pytest.raises(ConfigError, match="heads"):
        SequenceUserTower(sequences_of(_splits(), ("train",)), 8, heads=3)
