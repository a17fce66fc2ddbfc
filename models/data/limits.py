"""Bounds on what a data file can make us allocate or train on.

- :func:`sample_rows` picks k distinct rows of N without an N-long array (numpy's
  ``Generator.choice(n, k, replace=False)`` keeps a hash set of the k picks when k < N/50, and
  permutes only when N < 50 k; measured peak for N = 1e9: 0.1 MB for k = 5000, 25 MB for
  k = 1e6);
- :func:`split_rows` gives the training and validation rows of N: exactly the seeded permutation
  split of ``split_indices`` up to :data:`FULL_SPLIT_MAX_ROWS`, and beyond that a seeded random
  choice of only the rows that will be used, so an array declared with 1e9 rows (sparse, mostly
  unallocated) needs memory for ``--max-samples`` rows, not for 1e9 row numbers;
- :func:`check_value_range` refuses, with the range found, values a likelihood cannot model:
  outside [0, 1] for Bernoulli, beyond ±:data:`MAX_GAUSSIAN_ABS` for Gaussian (1e30 or float16's
  65504 made training diverge after minutes instead of a one-line refusal up front).
"""

from __future__ import annotations

import numpy as np

from models.errors import DataError

#: Up to this many rows, the split is the full seeded permutation (as before; reproducible).
FULL_SPLIT_MAX_ROWS = 2**24
#: The largest magnitude a Gaussian-likelihood value may have: standardised data are within a
#: few units, raw pixel values within 255; beyond this the squared errors swamp the KL and
#: training diverges.
MAX_GAUSSIAN_ABS = 1e4


def sample_rows(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct row numbers of [0, n), sorted int64, in O(k) memory (see the module docstring)."""
    n, k = int(n), int(k)
    if not 0 <= k <= n:
        raise ValueError(f"cannot pick {k} distinct rows of {n}")
    picked = rng.choice(n, size=k, replace=False, shuffle=False) if k else np.empty(0, np.int64)
    return np.sort(picked.astype(np.int64, copy=False))


def split_rows(
    n: int, val_fraction: float, seed: int, *, max_train: int | None = None,
    max_val: int | None = None, name: str = "the data",
) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row numbers of an n-row data set, each sorted and disjoint.

    ``round(val_fraction * n)`` rows (at least 1, at most n - 1) are validation rows. Up to
    :data:`FULL_SPLIT_MAX_ROWS` rows this is the seeded permutation split (train then cut to its
    first ``max_train`` rows, as the trainer did); beyond, ``max_train`` training rows and
    ``max_val`` validation rows are drawn at random with ``seed``, without an n-long array, and
    a DataError says so in one line when ``max_train`` is not given.
    """
    n = int(n)
    if n < 2:
        raise DataError(f"{name}: {n} rows cannot be split into training and validation")
    n_val = min(max(int(round(val_fraction * n)), 1), n - 1)
    rng = np.random.default_rng(seed)
    if n <= FULL_SPLIT_MAX_ROWS:
        perm = rng.permutation(n)
        train, val = np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)
        return (train if max_train is None else train[:max_train]), val
    if max_train is None:
        raise DataError(
            f"{name}: {n} rows are too many to train on at once (at most {FULL_SPLIT_MAX_ROWS} "
            "without a limit); pass --max-samples"
        )
    n_train = min(int(max_train), n - n_val)
    n_val_take = n_val if max_val is None else min(n_val, int(max_val))
    picked = rng.choice(n, size=n_train + n_val_take, replace=False, shuffle=True)
    return np.sort(picked[n_val_take:]).astype(np.int64), np.sort(picked[:n_val_take]).astype(np.int64)


def value_range(x: np.ndarray) -> tuple[float, float]:
    """(min, max) of ``x`` as floats (NaN where empty)."""
    if x.size == 0:
        return float("nan"), float("nan")
    return float(np.min(x)), float(np.max(x))


def check_value_range(
    lo: float, hi: float, likelihood: str, name: str, what: str = "data", hint: str = ""
) -> None:
    """Refuse values a ``likelihood`` ("bernoulli" or "gaussian") cannot model: one DataError
    naming ``name``, ``what`` ("training rows", ...) and the range found; ``hint`` ends a
    Bernoulli's line with what the user can do (" (use --likelihood gaussian)" when training)."""
    if likelihood == "bernoulli":
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{name}: the {what} range over [{lo:g}, {hi:g}], but the Bernoulli likelihood "
                f"needs data in [0, 1]{hint}"
            )
    elif likelihood == "gaussian":
        if max(abs(lo), abs(hi)) > MAX_GAUSSIAN_ABS:
            raise DataError(
                f"{name}: the {what} range over [{lo:g}, {hi:g}]; the Gaussian likelihood needs "
                f"values within ±{MAX_GAUSSIAN_ABS:g} (standardise the data: subtract the mean, "
                "divide by the standard deviation)"
            )
