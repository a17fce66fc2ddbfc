"""The Dataset and its split: deterministic, complete, predefined splits kept; spec limits."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import Dataset, load_dataset, split_indices
from models.errors import ConfigError, DataError


def test_split_random_is_deterministic_and_complete() -> None:
    ds = Dataset(np.zeros((50, 3), np.float32), name="toy")
    train, val = split_indices(ds, 0.2, seed=1)
    assert len(val) == 10 and len(train) == 40
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(50))
    again = split_indices(ds, 0.2, seed=1)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    other = split_indices(ds, 0.2, seed=2)
    assert not np.array_equal(other[1], val)
    tiny_train, tiny_val = split_indices(ds, 0.001, seed=0)
    assert len(tiny_val) == 1 and len(tiny_train) == 49
    big_train, big_val = split_indices(ds, 0.999, seed=0)
    assert len(big_train) == 1 and len(big_val) == 49
    with pytest.raises(ConfigError, match="val_fraction"):
        split_indices(ds, 1.0, seed=0)


def test_split_uses_predefined_validation() -> None:
    ds = Dataset(np.zeros((20, 2), np.float32), name="toy", val_indices=np.arange(15, 20))
    train, val = split_indices(ds, 0.5, seed=9)
    np.testing.assert_array_equal(val, np.arange(15, 20))
    np.testing.assert_array_equal(train, np.arange(15))




def test_in_memory_iter_batches_covers_every_row_once() -> None:
    x = np.arange(47 * 2, dtype=np.float32).reshape(47, 2)
    ds = Dataset(x, name="toy")
    got = np.concatenate(list(ds.iter_batches(np.arange(47), 10, np.random.default_rng(0))))
    assert sorted(got[:, 0].tolist()) == x[:, 0].tolist()
    assert not np.array_equal(got, x)



def test_max_samples_too_small_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_samples must be at least"):
        load_dataset("shapes", max_samples=3)


def test_empty_spec_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no data set given"):
        load_dataset("  ")
