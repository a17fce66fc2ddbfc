"""Row picking and splitting without N-long arrays; value ranges refused up front."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from models.data.dataset import Dataset, split_indices
from models.data.limits import check_value_range, sample_rows, split_rows
from models.errors import DataError


@pytest.mark.parametrize("n", [2, 10, 1000, 12345])
def test_split_rows_is_the_old_split_up_to_the_full_split_limit(n) -> None:
    ds = Dataset(np.zeros((n, 2), np.float32), name="x")
    for seed in (0, 3):
        old_train, old_val = split_indices(ds, 0.1, seed)
        train, val = split_rows(n, 0.1, seed)
        assert np.array_equal(train, old_train) and np.array_equal(val, old_val)
        assert np.array_equal(split_rows(n, 0.1, seed, max_train=5)[0], old_train[:5])


def test_a_billion_rows_split_in_memory_for_the_rows_used() -> None:
    tracemalloc.start()
    train, val = split_rows(10**9, 0.1, seed=1, max_train=5000, max_val=1000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 * 2**20  # an N-long permutation would be 8 GB
    assert len(train) == 5000 and len(val) == 1000 and not set(train) & set(val)
    assert (np.diff(train) > 0).all() and train.max() < 10**9 and train.dtype == np.int64
    again = split_rows(10**9, 0.1, seed=1, max_train=5000, max_val=1000)
    assert np.array_equal(again[0], train)  # seeded


def test_a_billion_rows_without_a_limit_are_one_line() -> None:
    with pytest.raises(DataError, match="pass --max-samples") as info:
        split_rows(10**9, 0.1, 0, name="big.h5:x")
    assert "\n" not in str(info.value)


def test_sample_rows_is_distinct_sorted_and_small() -> None:
    rng = np.random.default_rng(0)
    tracemalloc.start()
    rows = sample_rows(20 * 2**31, 5000, rng)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20 and len(np.unique(rows)) == 5000 and (np.diff(rows) > 0).all()
    assert list(sample_rows(5, 5, rng)) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        sample_rows(3, 4, rng)


@pytest.mark.parametrize("hi", [1e30, float(np.finfo(np.float16).max)])
def test_huge_values_are_refused_for_a_gaussian_likelihood_with_the_range(hi) -> None:
    with pytest.raises(DataError, match="Gaussian") as info:
        check_value_range(0.0, hi, "gaussian", "f.h5:x", "training rows")
    assert f"[0, {hi:g}]" in str(info.value)
    check_value_range(0.0, 255.0, "gaussian", "f.h5:x")
    check_value_range(-3.0, 3.0, "gaussian", "f.h5:x")


def test_bernoulli_needs_unit_range() -> None:
    with pytest.raises(DataError, match="Bernoulli"):
        check_value_range(0.0, 2.0, "bernoulli", "f.h5:x")
    check_value_range(0.0, 1.0, "bernoulli", "f.h5:x")
