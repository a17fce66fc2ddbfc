"""From stored rows to model inputs: range checks, binarisation, a run's split and validation rows.

One definition of each rule, for the trainer, ``diagnose`` and the app alike: a Bernoulli
likelihood needs data in [0, 1] (:func:`check_unit_range`); the validation set is binarised once
with a fixed seed (:func:`binarize_validation`); training bytes are binarised afresh with
:func:`bernoulli_bytes`; a run holds out the rows :func:`run_split` names, and
:func:`validation_rows` reads those rows of a recorded run again, model-ready.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from models.data.dataset import Dataset, split_indices
from models.data.hdf5 import parse_hdf5_spec
from models.data.limits import check_value_range, value_range
from models.data.load import load_dataset
from models.errors import ConfigError, DataError
from models.latent import discrete

#: The validation set is binarised once with this seed (whatever the run's seed), so runs with
#: different seeds are scored on the same binary images.
VAL_BINARIZE_SEED = 0
#: At most this many validation rows are held in memory and scored each epoch.
MAX_VAL_SAMPLES = 10_000


def check_unit_range(x: np.ndarray, source: str, what: str = "data", hint: str = "") -> None:
    """DataError unless every value of ``x`` lies in [0, 1], as a Bernoulli likelihood needs.

    ``source`` names the data set, ``what`` the rows (``"training rows"``); ``hint`` ends the
    line with what the user can do (`` (use --likelihood gaussian)`` when training)."""
    check_range(x, "bernoulli", source, what, hint)


def check_range(
    x: np.ndarray, likelihood: str, source: str, what: str = "data", hint: str = ""
) -> None:
    """DataError unless ``x``'s values suit the ``likelihood``: [0, 1] for a Bernoulli, a bounded
    range for a Gaussian (``models.data.limits.check_value_range``), with the range found."""
    if x.size == 0:
        return
    lo, hi = value_range(x)
    check_value_range(lo, hi, likelihood, source, what, hint)


def binarize_validation(x: np.ndarray, binarize: str, source: str = "the data") -> np.ndarray:
    """Rows in [0, 1] made binary as the trainer makes its validation set, float32 0/1:
    ``threshold`` keeps pixel > 0.5; ``dynamic`` draws x ~ Bernoulli(pixel) once, all rows at
    once with ``VAL_BINARIZE_SEED`` (so the same rows always give the same images)."""
    check_unit_range(x, source)
    if binarize == "threshold":
        return (x > 0.5).astype(np.float32)
    rng = np.random.default_rng(VAL_BINARIZE_SEED)
    return (rng.random(x.shape, dtype=np.float32) < x).astype(np.float32)


def model_ready(
    x: np.ndarray, config: Any, source: str = "the data", dequantized: bool = False
) -> np.ndarray:
    """Rows as a run's model saw its validation set: binarised for a Bernoulli likelihood
    (:func:`binarize_validation`), dequantised with the evaluation seed when the run was trained
    on dequantised 8-bit data (``dequantized``: :func:`trained_dequantized`), unchanged
    otherwise. ``config`` is the run's RunConfig."""
    if config.model.likelihood == "bernoulli":
        return binarize_validation(x, config.train.binarize, source)
    if dequantized:
        return discrete.dequantize_uint8(discrete.unit_to_bytes(x), discrete.EVAL_DEQUANTIZE_SEED)
    return x


def trained_dequantized(run: Any) -> bool:
    """Whether a recorded run (a RunReader) trained a Gaussian on dequantised 8-bit data, as its
    data description says (files from before dequantisation trained on k / 255: they did not)."""
    kind = (run.dataset_info or {}).get("likelihood_kind")
    return run.config.model.likelihood == "gaussian" and kind == discrete.LikelihoodKind.DISCRETE


def bernoulli_bytes(k: np.ndarray, bits: np.random.BitGenerator) -> np.ndarray:
    """Dynamic binarisation of uint8 pixels: a bool array x with P(x = 1) = k/255 * (1 - 2**-24).

    Each pixel gets a 24-bit uniform u = (b1, b2, b3), three random bytes, and x = [u < k * 65793],
    where k * 65793 = k * (2**24 - 1) / 255 is the byte triple (k, k, k); so u < (k, k, k) is
    compared lexicographically, byte by byte. The probability is k/255 to 24 bits, the resolution
    of float32 ``torch.rand``: exactly 0 for k = 0, and 1 - 2**-24 for k = 255.
    """
    n = k.size
    raw = bits.random_raw(-(-3 * n // 8)).view(np.uint8)[: 3 * n]
    b1, b2, b3 = raw.reshape(3, *k.shape)
    x = b3 < k
    x &= b2 == k
    x |= b2 < k
    x &= b1 == k
    x |= b1 < k
    return x


def run_split(dataset: Dataset, train: Any) -> tuple[np.ndarray, np.ndarray]:
    """A run's training and validation rows of ``dataset`` for its TrainConfig ``train``.

    The split is ``split_indices(dataset, val_fraction, seed)`` (MNIST: its test images);
    ``max_train_samples`` keeps the first rows of the training side; at most ``MAX_VAL_SAMPLES``
    validation rows (a seeded subset) are kept."""
    if train.max_train_samples is not None and train.max_train_samples < 1:
        raise ConfigError(f"max_train_samples must be at least 1, not {train.max_train_samples}")
    train_idx, val_idx = split_indices(
        dataset, train.val_fraction, train.seed,
        max_train=train.max_train_samples, max_val=MAX_VAL_SAMPLES,
    )
    if train.max_train_samples is not None:
        train_idx = train_idx[: train.max_train_samples]
    if len(val_idx) > MAX_VAL_SAMPLES:
        rng = np.random.default_rng(train.seed)
        val_idx = np.sort(rng.choice(val_idx, size=MAX_VAL_SAMPLES, replace=False))
    return train_idx, val_idx


def run_data_spec(dataset_info: dict[str, Any], stored_spec: str) -> str:
    """The data spec to load a run's data set again, from any working directory.

    For an HDF5 file, the absolute file and array path recorded at training time (older run
    files stored the spec as typed, possibly relative to the directory training ran in);
    otherwise the stored spec (``mnist``, ``shapes:32``). ``dataset_info`` is the run's
    ``Dataset.describe()``; ``stored_spec`` its configuration's ``train.data``.
    """
    spec = str(dataset_info.get("spec") or stored_spec)
    file, array = dataset_info.get("file"), dataset_info.get("array")
    if dataset_info.get("source") != "hdf5" or not isinstance(file, str) or not file:
        return spec
    if not os.path.exists(file) and not os.path.isabs(spec):
        if os.path.exists(parse_hdf5_spec(spec)[0]):  # moved along with the current directory
            return spec
    return f"{file}:{array}" if isinstance(array, str) and array else file


class RecordedRun(Protocol):
    """What :func:`validation_rows` needs of a run (``models.io.runfile.RunReader`` has it)."""

    path: str
    config: Any
    dataset_info: dict[str, Any]
    val_indices: np.ndarray


@dataclass
class RunRows:
    """Rows of a run's data set, model-ready: ``x`` float32 ``[n, *data_shape]``, their
    ``indices`` in ``dataset``, and ``description`` (what they are, in words)."""

    x: np.ndarray
    indices: np.ndarray
    dataset: Dataset
    description: str


def open_run_data(run: RecordedRun) -> Dataset:
    """A recorded run's data set, opened again from any directory (absolute HDF5 path), with its
    labels and row limit; DataError when it no longer has the rows or shape it had."""
    cfg, info = run.config, run.dataset_info
    spec = run_data_spec(info, cfg.train.data)
    dataset = load_dataset(spec, cfg.train.labels, max_samples=info.get("max_samples"))
    n_stored = info.get("n")
    if n_stored is not None and len(dataset) != int(n_stored):
        raise DataError(
            f"{spec}: has {len(dataset)} rows but had {n_stored} in training; the data "
            "changed since (use --data)"
        )
    check_fits(dataset, cfg.model.data_shape)
    return dataset


def check_fits(dataset: Dataset, data_shape: tuple[int, ...]) -> None:
    """DataError unless the data set's rows have as many values as the model's inputs."""
    want = tuple(data_shape)
    if math.prod(dataset.sample_shape) != math.prod(want):
        raise DataError(
            f"{dataset.name}: samples of shape {tuple(dataset.sample_shape)} do not fit the "
            f"model's data shape {want}"
        )


def validation_rows(
    run: RecordedRun, *, max_samples: int | None = None, seed: int = 0, every_row: bool = False
) -> RunRows:
    """A recorded run's validation rows, read and binarised exactly as its trainer did.

    All of them are binarised at once with the fixed seed, so the images are the very ones the
    run was validated on; ``max_samples`` then keeps a sorted seeded subset. ``every_row`` takes
    every row of the data set instead (binarised by the same rule), as does a run that records no
    validation rows."""
    cfg = run.config
    dataset = open_run_data(run)
    rows = np.asarray(run.val_indices, dtype=np.int64)
    if every_row or rows.size == 0:
        rows = np.arange(len(dataset))
        what = f"{len(rows)} rows of {dataset.name}"
    else:
        if rows.max() >= len(dataset):
            raise DataError(
                f"{dataset.name}: has {len(dataset)} rows but the run's validation rows go up "
                f"to {int(rows.max())}; the data changed since training (use --data)"
            )
        what = f"{len(rows)} validation rows of {dataset.name}"
    shape = tuple(cfg.model.data_shape)
    x = model_ready(
        dataset.read(rows).reshape(len(rows), *shape), cfg, dataset.name, trained_dequantized(run)
    )
    pick, note = subset(len(rows), max_samples, seed)
    return RunRows(x[pick], rows[pick], dataset, f"{note}{what}")


def subset(n: int, limit: int | None, seed: int) -> tuple[np.ndarray, str]:
    """At most ``limit`` of ``n`` positions, a sorted seeded random choice; and the words for it."""
    if limit is None or limit >= n:
        return np.arange(n), "all "
    pick = np.random.default_rng(seed).choice(n, size=limit, replace=False)
    return np.sort(pick), f"{limit} (random, seed {seed}) of "
