"""The built-in MNIST (resources/mnist): 60,000 training then 10,000 test images, uint8, in memory.

The IDX files are parsed here (``read_idx``), once per process; the test images are the predefined
validation split, so validation numbers compare with the literature.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import math

import numpy as np

from models.data.dataset import Dataset, check_max_samples
from models.errors import DataError

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_TRAIN = 60_000
MNIST_TEST = 10_000


def read_idx(data: bytes, magic: int, source: str) -> np.ndarray:
    """Parse an uncompressed IDX file of unsigned bytes.

    The layout is big-endian: a magic number (two zero bytes, type 0x08 for unsigned bytes, the
    number of dimensions), one uint32 per dimension, then the raw bytes. ``magic`` is the one
    expected (0x00000803 for images, 0x00000801 for labels); ``source`` names the file in errors.
    """
    if len(data) < 4:
        raise DataError(f"{source}: not an IDX file ({len(data)} bytes)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"{source}: IDX magic number is 0x{found:08x}, expected 0x{magic:08x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: IDX header cut short ({len(data)} of {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if any(d == 0 for d in dims):
        raise DataError(f"{source}: IDX dimensions {dims} hold no data")
    payload = len(data) - header
    if payload != math.prod(dims):
        raise DataError(
            f"{source}: IDX payload is {payload} bytes but dimensions {dims} need "
            f"{math.prod(dims)} (truncated or damaged file)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


@functools.lru_cache(maxsize=None)
def _mnist_part(key: str) -> np.ndarray:
    """One MNIST file, decompressed and parsed once per process (read-only array)."""
    name = MNIST_FILES[key]
    resource = importlib.resources.files("resources").joinpath("mnist", name)
    try:
        raw = gzip.decompress(resource.read_bytes())
    except FileNotFoundError:
        raise DataError(f"{name}: the built-in MNIST file is missing from the install") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{name}: the built-in MNIST file is damaged ({exc})") from None
    magic = 0x00000803 if key.endswith("images") else 0x00000801
    arr = read_idx(raw, magic, name)
    expected = MNIST_TRAIN if key.startswith("train") else MNIST_TEST
    want_shape = (expected, 28, 28) if key.endswith("images") else (expected,)
    if arr.shape != want_shape:
        raise DataError(f"{name}: shape {arr.shape}, expected {want_shape}")
    return arr


def load_mnist(max_samples: int | None = None) -> Dataset:
    """MNIST: 60,000 training then 10,000 test images, uint8 ``[N, 1, 28, 28]`` in memory.

    ``val_indices`` are the test images (rows 60000..69999), so validation numbers compare with
    the literature. ``max_samples`` keeps the first rows of each part in proportion 6:1.
    """
    check_max_samples(max_samples)
    n_train, n_test = MNIST_TRAIN, MNIST_TEST
    if max_samples is not None and max_samples < MNIST_TRAIN + MNIST_TEST:
        share = round(max_samples * MNIST_TRAIN / (MNIST_TRAIN + MNIST_TEST))
        n_train = min(max(int(share), 1), max_samples - 1)
        n_test = max_samples - n_train
    images = np.concatenate(
        [_mnist_part("train_images")[:n_train], _mnist_part("test_images")[:n_test]]
    ).reshape(n_train + n_test, 1, 28, 28)
    labels = np.concatenate(
        [_mnist_part("train_labels")[:n_train], _mnist_part("test_labels")[:n_test]]
    ).astype(np.int64)
    if labels.max() > 9:
        raise DataError(f"{MNIST_FILES['train_labels']}: labels beyond 0-9")
    return Dataset(
        images,
        name="mnist",
        scaling="uint8/255",
        labels=labels,
        label_names=[str(d) for d in range(10)],
        val_indices=np.arange(n_train, n_train + n_test),
        spec="mnist",
        info={
            "source": "built-in MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), CC BY-SA 3.0",
            "labels": "built-in",
            "n_train_part": n_train,
            "n_test_part": n_test,
            "max_samples": max_samples,
        },
    )
