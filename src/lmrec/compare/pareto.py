"""The cost/accuracy Pareto front: which runs are worth their cost (training time, parameters, GPU hours).

A point is on the front when no other point is at least as cheap and at least as accurate and strictly better in
one of the two. So:
  - identical points (same cost, same accuracy) are all on the front or all off it: neither beats the other, and
    dropping one at random would make the result depend on the order of the runs;
  - of points with the same cost, only the most accurate are on the front; of points with the same accuracy, only
    the cheapest;
  - a point with a NaN cost or accuracy (a failed or unmeasured run) is never on the front and hides no other.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def pareto_front(cost: ArrayLike, accuracy: ArrayLike, higher_is_better: bool = True) -> np.ndarray:
    """A boolean mask over the points: True where the point is on the front (lower cost is always better; higher
    accuracy is better unless `higher_is_better` is False, e.g. for a loss).

    One pass over the points sorted by cost (then by accuracy, best first): a point is on the front when it is
    more accurate than every point before it, or is a duplicate of the point that set the best accuracy."""
    cost = np.asarray(cost, dtype=np.float64)
    score = np.asarray(accuracy, dtype=np.float64)
    if cost.shape != score.shape or cost.ndim != 1:
        raise ValueError(f"cost and accuracy must be vectors of one length, got {cost.shape} and {score.shape}")
    score = score if higher_is_better else -score
    front = np.zeros(cost.shape, dtype=bool)
    valid = np.flatnonzero(~(np.isnan(cost) | np.isnan(score)))
    order = valid[np.lexsort((-score[valid], cost[valid]))]
    best_score, best_cost = None, None
    for i in order:
        if best_score is None or score[i] > best_score:
            front[i] = True
            best_score, best_cost = score[i], cost[i]
        elif score[i] == best_score and cost[i] == best_cost:
            front[i] = True  # a duplicate of the point that set the best score
    return front
