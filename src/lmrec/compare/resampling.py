"""The two resampling engines behind the paired tests and the intervals: sign flips and the user bootstrap.

Both turn resampling into matrix products: one random matrix (replicates x users: signs, or bootstrap weights)
times the matrix of per-user values (users x columns) gives every replicate's statistic for every column at once.
That is what makes 20 metrics x 9 comparisons x 138,000 users x 1,000 replicates take seconds: the random matrix is
drawn once for all columns, and the product runs in BLAS instead of a Python loop per metric.

Memory stays bounded by walking the users in chunks of `USER_CHUNK` and the replicates in blocks of
`REPLICATE_BLOCK`: the random matrix never exists whole, only one (block x chunk) piece of it (32 MB at most).

Reproducibility: every block of replicates draws from its own stream, `numpy.random.default_rng([seed, stream,
block])`, and users are consumed in their order, so the same seed, the same number of users and the same number of
replicates give the identical result, whatever the number of columns: a metric tested alone gets the same signs and
weights as when it is tested beside 179 others. Undefined users are passed in as zeros: a zero difference flips to
itself and a zero value adds nothing to a weighted sum, so a column's result is the one of its defined users alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

#: Users per chunk of the random matrix; fixed, since the bootstrap's draws depend on it (the sign flips do not).
USER_CHUNK = 4096
#: Replicates (sign patterns or bootstrap samples) per block, each block with its own random stream.
REPLICATE_BLOCK = 1024
#: Stream ids: the signs and the bootstrap weights of one seed are independent of each other.
SIGN_STREAM, BOOTSTRAP_STREAM = 1, 2
#: Relative tolerance of "as extreme as observed", in units of sum(|d|): a flip that reproduces the observed
#: arrangement (the identity, or its mirror) sums the same numbers in another order, so it may differ from the
#: observed sum by rounding (at most about n * 1.1e-16 * sum(|d|)); without it such a flip could miss its own count.
TIE_TOLERANCE = 1e-9
_SIGNS = np.array([-1.0, 1.0])


def _blocks(replicates: int) -> list[tuple[int, int]]:
    """(start, size) of each block of replicates."""
    return [(start, min(REPLICATE_BLOCK, replicates - start)) for start in range(0, replicates, REPLICATE_BLOCK)]


def sign_flip_exceedances(diffs: np.ndarray, permutations: int, seed: int) -> np.ndarray:
    """For each column of `diffs` (users x columns, undefined users as 0), how many of `permutations` random sign
    flips of the per-user differences give |sum| >= |observed sum| (the two-sided count of a paired randomisation
    test; the sum is equivalent to the mean, as the number of users is fixed).

    Each user's signs for a block are the bits of its own run of raw 64-bit draws, so the signs do not depend on
    the chunking; a chunk's ±1 matrix (users x block) multiplies the chunk's differences, and the block's sums are
    compared with the observed ones before the next block is drawn."""
    diffs = np.asarray(diffs, dtype=np.float64)
    observed = np.abs(diffs.sum(axis=0))
    threshold = observed - TIE_TOLERANCE * np.abs(diffs).sum(axis=0)
    count = np.zeros(diffs.shape[1], dtype=np.int64)
    n = diffs.shape[0]
    for block, (_, size) in enumerate(_blocks(permutations)):
        bits = np.random.default_rng([seed, SIGN_STREAM, block]).bit_generator
        words = -(-size // 64)
        sums = np.zeros((size, diffs.shape[1]))
        for start in range(0, n, USER_CHUNK):
            stop = min(start + USER_CHUNK, n)
            raw = bits.random_raw((stop - start) * words).reshape(stop - start, words)
            flips = np.unpackbits(raw.view(np.uint8), axis=1, count=size, bitorder="little")
            sums += _SIGNS[flips].T @ diffs[start:stop]
        count += (np.abs(sums) >= threshold).sum(axis=0)
    return count


def bootstrap_sums(values: np.ndarray | Sequence[np.ndarray], resamples: int, seed: int) -> np.ndarray:
    """(resamples x columns): for each bootstrap sample of the users (n draws with replacement out of n), the sum
    over the sample of each column of `values` (users x columns, undefined entries as 0; or several such matrices
    on the same users, whose columns come out side by side, without copying them into one). A column of 0/1 flags
    gives the number of sampled users that have the metric, so a mean is the ratio of two such columns.

    The weights of one sample, how often each user was drawn, are one multinomial(n, 1/n, ..., 1/n) draw. It is
    drawn chunk by chunk without ever holding all n weights: how many of the draws still to place fall into the
    next chunk is binomial(draws left, chunk size / users left) (the multinomial's conditional decomposition),
    and those are spread uniformly over the chunk's users (uniform indices, counted)."""
    parts = [np.asarray(values)] if isinstance(values, np.ndarray) else [np.asarray(v) for v in values]
    n = parts[0].shape[0]
    if any(part.ndim != 2 or part.shape[0] != n for part in parts):
        raise ValueError("bootstrap_sums needs users x columns matrices on the same users")
    edges = np.cumsum([0] + [part.shape[1] for part in parts])
    columns = int(edges[-1])
    out = np.empty((resamples, columns))
    for block, (first, size) in enumerate(_blocks(resamples)):
        rng = np.random.default_rng([seed, BOOTSTRAP_STREAM, block])
        left = np.full(size, n, dtype=np.int64)
        sums = np.zeros((size, columns))
        for start in range(0, n, USER_CHUNK):
            stop = min(start + USER_CHUNK, n)
            m = stop - start
            taken = left if stop == n else rng.binomial(left, m / (n - start))
            left = left - taken
            index = rng.integers(0, m, size=int(taken.sum()), dtype=np.uint16 if m < 1 << 16 else np.int64)
            index = index + np.repeat(np.arange(size, dtype=np.int64) * m, taken)
            weights = np.bincount(index, minlength=size * m).reshape(size, m).astype(np.float64)
            for part, left_edge, right_edge in zip(parts, edges[:-1], edges[1:], strict=True):
                sums[:, left_edge:right_edge] += weights @ part[start:stop]
        out[first : first + size] = sums
    return out


def percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap interval of each column (NaN replicates, e.g. a sample without a defined user,
    left out): the plain percentile method, which needs no extra pass (BCa would need a jackknife over 138,000
    users) and is accurate for means of this many users."""
    tail = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():  # an all-NaN column (a metric defined for nobody) is NaN, as meant
        warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
        low, high = np.nanquantile(replicates, [tail, 1.0 - tail], axis=0)
    return low, high
