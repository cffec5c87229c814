"""Each fitted baseline against a reference computed another way, on a tiny random matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmrec.data.sparse import CSRMatrix
from lmrec.encoders.text_sources import FrozenTextTable
from lmrec.errors import ConfigError
from lmrec.model.baselines.biases import RatingBiases
from lmrec.model.baselines.ease import EASE
from lmrec.model.baselines.item_knn import ItemKNN
from lmrec.model.baselines.popularity import MostPopular
from lmrec.model.baselines.text_ease import TextEASE


def _random_history(
    users: int = 12, items: int = 9, density: float = 0.35, seed: int = 0
) -> tuple[CSRMatrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    dense = rng.random((users, items)) < density
    dense[:, 0] = True  # no empty column, so every similarity is defined
    rows, cols = np.nonzero(dense)
    matrix = CSRMatrix.from_pairs(torch.from_numpy(rows), torch.from_numpy(cols), (users, items))
    return matrix, dense.astype(np.float64)


def _ridge_per_item(design_rows: np.ndarray, l2: float) -> np.ndarray:
    """Column j of B: the ridge regression of column j of `design_rows` on every other column (lstsq on the
    augmented system), zero on the diagonal."""
    n = design_rows.shape[1]
    reference = np.zeros((n, n))
    for j in range(n):
        others = [i for i in range(n) if i != j]
        design = np.vstack([design_rows[:, others], np.sqrt(l2) * np.eye(n - 1)])
        target = np.concatenate([design_rows[:, j], np.zeros(n - 1)])
        reference[others, j] = np.linalg.lstsq(design, target, rcond=None)[0]
    return reference


def test_ease_equals_one_ridge_regression_per_item_on_the_other_items():
    """EASE's closed form with a zero diagonal is, column by column, the ridge regression of item j's column on
    every other item's column (solved here with numpy's least squares on the augmented system)."""
    history, x = _random_history()
    l2 = 3.0
    model = EASE(history, l2=l2)
    model.fit()
    reference = _ridge_per_item(x, l2)
    assert np.allclose(model.weights.numpy(), reference, atol=1e-5)
    users = torch.tensor([0, 3, 7])
    assert torch.allclose(model.score_all(users), torch.from_numpy(x[[0, 3, 7]] @ reference).float(), atol=1e-5)
    with pytest.raises(ConfigError, match="l2"):
        EASE(history, l2=0)


@pytest.mark.parametrize("shrink", [0.0, 2.5])
def test_item_knn_equals_a_brute_force_loop(shrink):
    history, x = _random_history(users=15, items=8, seed=1)
    k = 3
    model = ItemKNN(history, neighbours=k, shrink=shrink, block=3)  # several blocks
    model.fit()
    n = x.shape[1]
    sim = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                common = float((x[:, i] * x[:, j]).sum())
                sim[i, j] = common / (np.sqrt(x[:, i].sum()) * np.sqrt(x[:, j].sum()) + shrink)
    expected = np.zeros((x.shape[0], n))
    for i in range(n):
        keep = np.argsort(-sim[i], kind="stable")[:k]
        threshold = sim[i, keep[-1]]
        # Ties at the k-th similarity may resolve either way; compare only where the neighbour set is unambiguous.
        if (np.isclose(sim[i], threshold)).sum() > (np.isclose(sim[i, keep], threshold)).sum():
            continue
        for u in range(x.shape[0]):
            expected[u, i] = sum(sim[i, j] for j in keep if x[u, j])
        scores = model.score_all(torch.arange(x.shape[0]))[:, i].numpy()
        assert np.allclose(scores, expected[:, i], atol=1e-6), i
    assert model.neighbour_index.shape == (n, k)


def test_most_popular_scores_every_user_by_training_counts():
    history, x = _random_history()
    model = MostPopular(history)
    model.fit()
    scores = model.score_all(torch.tensor([1, 5]))
    assert torch.equal(scores, torch.from_numpy(np.tile(x.sum(axis=0), (2, 1))).float())


def test_rating_biases_converge_to_the_ridge_solution():
    rng = np.random.default_rng(3)
    users, items = rng.integers(0, 6, 60), rng.integers(0, 5, 60)
    ratings = rng.integers(1, 6, 60).astype(np.float64)
    interactions = (torch.from_numpy(users), torch.from_numpy(items), torch.from_numpy(ratings).float())
    model = RatingBiases(interactions, num_users=7, num_items=5, user_l2=2.0, item_l2=3.0, iterations=300)
    model.fit()
    mean = ratings.mean()
    # min ‖r − μ − b_u − b_i‖² + 2‖b_u‖² + 3‖b_i‖² over [b_u; b_i], as one least-squares system.
    design = np.zeros((60, 12))
    design[np.arange(60), users] = 1.0
    design[np.arange(60), 7 + items] = 1.0
    augmented = np.vstack([design, np.diag([np.sqrt(2.0)] * 7 + [np.sqrt(3.0)] * 5)])
    solution = np.linalg.lstsq(augmented, np.concatenate([ratings - mean, np.zeros(12)]), rcond=None)[0]
    assert np.allclose(model.user_bias.numpy(), solution[:7], atol=1e-5)
    assert np.allclose(model.item_bias.numpy(), solution[7:], atol=1e-5)
    assert model.user_bias[6].item() == 0.0  # a user without training ratings gets the mean
    predicted = model.score_pairs(torch.tensor([0]), torch.tensor([2]))
    assert predicted.item() == pytest.approx(mean + solution[0] + solution[9], abs=1e-5)


def test_als_scores_are_the_libraries_own():
    implicit = pytest.importorskip("implicit")
    from lmrec.model.baselines.als import ImplicitALS

    history, _ = _random_history(users=20, items=10, seed=4)
    torch.manual_seed(7)
    model = ImplicitALS(history, factors=4, regularization=0.1, alpha=2.0, iterations=5)
    model.fit()
    reference = implicit.cpu.als.AlternatingLeastSquares(
        factors=4, regularization=0.1, alpha=2.0, iterations=5, num_threads=torch.get_num_threads(), random_state=7
    )
    from lmrec.model.baselines.base import scipy_matrix

    user_items = scipy_matrix(history).astype("float32")
    reference.fit(user_items, show_progress=False)
    ids, scores = reference.recommend(np.arange(20), user_items, N=10, filter_already_liked_items=False)
    ours = model.score_all(torch.arange(20)).numpy()
    assert np.allclose(np.take_along_axis(ours, ids, axis=1), scores, atol=1e-4)


@pytest.mark.parametrize("center", [True, False])
def test_text_ease_is_ease_on_the_interactions_stacked_over_weighted_text_rows(center):
    """Collective EASE: the text vectors (centred, unit norm) as √w-weighted pseudo-users below X, each item's
    column regressed on the others by least squares; scores use the real users' rows only."""
    history, x = _random_history(users=14, items=7, seed=5)
    vectors = torch.randn(7, 4, generator=torch.Generator().manual_seed(2)) + 3.0  # a shared offset, as in LMs
    weight, l2 = 2.5, 1.5
    model = TextEASE(history, FrozenTextTable(vectors), l2=l2, text_weight=weight, center=center)
    model.fit()
    side = vectors.double().numpy()
    if center:
        side = side - side.mean(axis=0, keepdims=True)
    side = side / np.linalg.norm(side, axis=1, keepdims=True)
    reference = _ridge_per_item(np.vstack([x, np.sqrt(weight) * side.T]), l2)
    assert np.allclose(model.weights.numpy(), reference, atol=1e-5)
    users = torch.tensor([1, 4, 13])
    assert torch.allclose(model.score_all(users), torch.from_numpy(x[[1, 4, 13]] @ reference).float(), atol=1e-5)
    assert "text.embeddings" in dict(model.named_buffers())  # lmrec-eval reads the vectors from the checkpoint


def test_text_ease_with_no_text_weight_is_ease_and_bad_inputs_are_refused():
    history, _ = _random_history()
    vectors = FrozenTextTable(torch.randn(9, 3))
    plain, text = EASE(history, l2=2.0), TextEASE(history, vectors, l2=2.0, text_weight=0.0)
    plain.fit()
    text.fit()
    assert torch.equal(plain.weights, text.weights)
    with pytest.raises(ConfigError, match="text_weight"):
        TextEASE(history, vectors, text_weight=-1.0)
    with pytest.raises(ConfigError, match="5 item text vectors for a catalogue of 9 items"):
        TextEASE(history, FrozenTextTable(torch.randn(5, 3)))
    with pytest.raises(ConfigError, match="model/tuning=frozen"):
        TextEASE(history, torch.nn.Linear(3, 3))


def test_text_ease_permuted_control_fits_the_same_vectors_assigned_to_other_items():
    history, x = _random_history(users=14, items=7, seed=6)
    vectors = torch.randn(7, 4, generator=torch.Generator().manual_seed(3))
    permutation = torch.randperm(7, generator=torch.Generator().manual_seed(11))
    control = TextEASE(history, FrozenTextTable(vectors), l2=1.0, text_weight=4.0, permute_text=11)
    reordered = TextEASE(history, FrozenTextTable(vectors[permutation]), l2=1.0, text_weight=4.0)
    control.fit()
    reordered.fit()
    assert torch.allclose(control.weights, reordered.weights, atol=1e-6)
    real = TextEASE(history, FrozenTextTable(vectors), l2=1.0, text_weight=4.0)
    real.fit()
    assert not torch.allclose(control.weights, real.weights, atol=1e-3)
