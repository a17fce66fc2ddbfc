"""Preprocessing: the range check, validation binarisation, a run's split and its validation rows."""

from __future__ import annotations

import types

import numpy as np
import pytest

from models.config import ModelConfig, RunConfig, TrainConfig
from models.data import (
    MAX_VAL_SAMPLES,
    VAL_BINARIZE_SEED,
    Dataset,
    binarize_validation,
    check_unit_range,
    load_dataset,
    model_ready,
    run_split,
    split_indices,
    validation_rows,
)
from models.errors import DataError


def test_the_unit_range_check_is_one_line_with_the_range() -> None:
    check_unit_range(np.array([0.0, 0.5, 1.0]), "toy")
    check_unit_range(np.zeros(0), "toy")
    with pytest.raises(DataError) as info:
        check_unit_range(np.array([-0.5, 2.0]), "toy.h5:x", "training rows", " (use --likelihood gaussian)")
    assert str(info.value) == (
        "toy.h5:x: the training rows range over [-0.5, 2], but the Bernoulli likelihood needs "
        "data in [0, 1] (use --likelihood gaussian)"
    )


def test_validation_binarisation_is_fixed_by_its_seed() -> None:
    x = np.random.default_rng(3).random((40, 1, 4, 4)).astype(np.float32)
    dyn = binarize_validation(x, "dynamic")
    expected = np.random.default_rng(VAL_BINARIZE_SEED).random(x.shape, dtype=np.float32) < x
    np.testing.assert_array_equal(dyn, expected.astype(np.float32))
    np.testing.assert_array_equal(dyn, binarize_validation(x, "dynamic"))  # the same every time
    assert dyn.dtype == np.float32 and 0.3 < dyn.mean() < 0.7
    np.testing.assert_array_equal(binarize_validation(x, "threshold"), (x > 0.5).astype(np.float32))
    with pytest.raises(DataError, match="range over"):
        binarize_validation(x * 3, "threshold")
    gauss = RunConfig(model=ModelConfig(data_shape=(1, 4, 4), likelihood="gaussian"))
    assert model_ready(x * 3, gauss) is not None and np.array_equal(model_ready(x * 3, gauss), x * 3)


def test_run_split_caps_training_and_validation_rows() -> None:
    data = Dataset(np.zeros((30, 2), np.float32), name="toy")
    train, val = run_split(data, TrainConfig(val_fraction=0.2, seed=4, max_train_samples=7))
    full_train, full_val = split_indices(data, 0.2, 4)
    np.testing.assert_array_equal(train, full_train[:7])
    np.testing.assert_array_equal(val, full_val)
    big = Dataset(np.zeros((MAX_VAL_SAMPLES * 2 + 10, 1), np.uint8), name="big")
    _, val = run_split(big, TrainConfig(val_fraction=0.5, seed=1))
    assert len(val) == MAX_VAL_SAMPLES and np.all(np.diff(val) > 0)
    assert set(val) <= set(split_indices(big, 0.5, 1)[1])


def _run(spec: str, val: np.ndarray, **info: object) -> types.SimpleNamespace:
    """What validation_rows reads of a run (a RunReader has these attributes)."""
    cfg = RunConfig(model=ModelConfig(data_shape=(1, 32, 32)), train=TrainConfig(data=spec))
    dataset_info = {"spec": spec, "n": 60, "max_samples": 60, **info}
    return types.SimpleNamespace(path="run.h5", config=cfg, dataset_info=dataset_info, val_indices=val)


def test_validation_rows_are_the_run_rows_binarised_all_at_once() -> None:
    val = np.arange(40, 60)
    got = validation_rows(_run("shapes:32", val))
    data = load_dataset("shapes:32", max_samples=60)
    np.testing.assert_array_equal(got.indices, val)
    np.testing.assert_array_equal(got.x, binarize_validation(data.read(val), "dynamic"))
    assert got.description == "all 20 validation rows of shapes:32"
    part = validation_rows(_run("shapes:32", val), max_samples=5, seed=2)
    assert len(part.x) == 5 and part.description.startswith("5 (random, seed 2) of 20 validation")
    pos = np.searchsorted(val, part.indices)
    np.testing.assert_array_equal(part.x, got.x[pos])  # a subset of the same draws, not new ones
    every = validation_rows(_run("shapes:32", val), every_row=True)
    assert len(every.x) == 60 and every.description == "all 60 rows of shapes:32"


def test_validation_rows_refuse_data_that_changed() -> None:
    with pytest.raises(DataError, match="had 99 in training"):
        validation_rows(_run("shapes:32", np.arange(5), n=99))
    with pytest.raises(DataError, match="go up to 70"):
        validation_rows(_run("shapes:32", np.array([3, 70])))
    with pytest.raises(DataError, match="do not fit"):
        validation_rows(_run("mnist", np.arange(5), n=None))
