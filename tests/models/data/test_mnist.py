"""The built-in MNIST: its files, facts, scaling, max_samples, and the IDX parser."""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import struct

import numpy as np
import pytest

from models.data import Dataset, load_dataset, read_idx, split_indices
from models.errors import DataError


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset("mnist")


def test_mnist_files_match_published_md5() -> None:
    expected = {
        "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
    }
    folder = importlib.resources.files("resources").joinpath("mnist")
    for name, md5 in expected.items():
        raw = gzip.decompress(folder.joinpath(name).read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5, name


def test_mnist_facts(mnist: Dataset) -> None:
    assert len(mnist) == 70_000
    assert mnist.sample_shape == (1, 28, 28)
    assert mnist.scaling == "uint8/255"
    assert mnist.in_memory
    assert mnist.label_names == [str(d) for d in range(10)]
    assert mnist.labels is not None and mnist.labels.dtype == np.int64
    assert mnist.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    np.testing.assert_array_equal(mnist.val_indices, np.arange(60_000, 70_000))
    counts = np.bincount(mnist.labels[mnist.val_indices], minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(mnist.labels).sum() == 70_000


def test_mnist_rows_are_the_idx_bytes_scaled(mnist: Dataset) -> None:
    folder = importlib.resources.files("resources").joinpath("mnist")
    raw = gzip.decompress(folder.joinpath("t10k-images-idx3-ubyte.gz").read_bytes())
    last = np.frombuffer(raw[-784:], dtype=np.uint8).reshape(1, 1, 28, 28)
    x = mnist.read(np.array([69_999]))
    assert x.dtype == np.float32 and x.shape == (1, 1, 28, 28)
    np.testing.assert_array_equal(x, last.astype(np.float32) / np.float32(255))
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5


def test_mnist_max_samples_keeps_both_parts(mnist: Dataset) -> None:
    small = load_dataset("mnist", max_samples=700)
    assert len(small) == 700
    np.testing.assert_array_equal(small.val_indices, np.arange(600, 700))
    np.testing.assert_array_equal(small.read(np.arange(600)), mnist.read(np.arange(600)))
    np.testing.assert_array_equal(small.read([600]), mnist.read([60_000]))
    train, val = split_indices(small, 0.5, seed=3)
    assert len(train) == 600 and len(val) == 100


def test_builtin_rejects_a_labels_path() -> None:
    with pytest.raises(DataError, match="labels"):
        load_dataset("mnist", labels="y")


def _idx(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_read_idx_parses_and_validates() -> None:
    good = _idx(0x803, (2, 3, 4), bytes(range(24)))
    arr = read_idx(good, 0x803, "x.idx")
    assert arr.shape == (2, 3, 4) and arr.dtype == np.uint8 and arr[1, 2, 3] == 23
    with pytest.raises(DataError, match=r"x\.idx: IDX magic number is 0x00000801"):
        read_idx(_idx(0x801, (24,), bytes(24)), 0x803, "x.idx")
    with pytest.raises(DataError, match="payload is 23 bytes but dimensions"):
        read_idx(good[:-1], 0x803, "x.idx")
    with pytest.raises(DataError, match="payload is 25 bytes"):
        read_idx(good + b"\0", 0x803, "x.idx")
    with pytest.raises(DataError, match="header cut short"):
        read_idx(good[:9], 0x803, "x.idx")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(b"\0\0", 0x803, "x.idx")
    with pytest.raises(DataError, match="hold no data"):
        read_idx(_idx(0x803, (0, 3, 4), b""), 0x803, "x.idx")
