"""Data sets: the built-in MNIST and "shapes", and the user's HDF5 files, behind one ``Dataset``.

``load_dataset(spec)`` takes ``"mnist"``, ``"shapes"`` (64x64), ``"shapes:32"`` (32x32), or
``"FILE.h5[:path/to/array]"``. Every data set stores its rows as they come (uint8 or float32) and
hands out float32 rows already scaled for the model (``read``, ``iter_batches``, ``to_numpy``).

HDF5 files up to ``IN_MEMORY_LIMIT`` bytes (as stored here: uint8, or float32) are loaded whole;
larger ones stay on disk and are read in contiguous runs of rows. An out-of-core data set reads
through one h5py handle per process, opened on first use and guarded by a lock, so several threads
of one process may read it (h5py serialises its calls anyway); a forked or spawned process opens
its own handle (a pickled ``Dataset`` carries no handle).

Every problem with the user's data raises ``DataError`` with one line naming the file and the
problem; ``docs/data.md`` lists them.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import math
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from models.errors import ConfigError, DataError, LatentExplorerError

MIN_SAMPLES = 10
"""A data set needs at least this many rows (so a split leaves both sides non-empty)."""

IN_MEMORY_LIMIT = 1 << 30
"""HDF5 arrays up to this many bytes (as stored in memory: uint8 or float32) are loaded whole."""

BLOCK_BYTES = 32 << 20
"""Out-of-core ``iter_batches`` reads blocks of about this many bytes of float32 rows."""

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_TRAIN = 60_000
MNIST_TEST = 10_000

SHAPE_NAMES = ["square", "ellipse", "heart", "triangle"]
SHAPES_N = 20_000
SHAPES_SIZES = (32, 64)

_SCALINGS = ("uint8/255", "none")
_GAP_BYTES = 256 << 10  # out-of-core reads span gaps up to this size rather than start a new read
_SPAN_BYTES = 64 << 20  # ... but one read covers at most this many bytes of the file
_CHECK_BYTES = 16 << 20  # rows per chunk when loading or checking a file, in bytes


# =========================================================================== the Dataset
class Dataset:
    """Rows of one data set, stored as uint8 or float32, handed out as scaled float32.

    Parameters
    ----------
    data
        An array ``[N, *sample_shape]`` (uint8 or float32; other floats are converted), or the
        on-disk source of an HDF5 array (made by :func:`open_hdf5`).
    name
        Shown to the user: ``"mnist"``, ``"shapes"`` or ``"FILE.h5:path/to/array"``.
    scaling
        ``"uint8/255"`` (stored bytes divided by 255) or ``"none"``; by default ``"uint8/255"``
        for uint8 data and ``"none"`` otherwise.
    labels, label_names
        Integer class of each row (int64 ``[N]``) and the name of each class value, if known.
    factors
        Known generative factors, one array ``[N]`` per factor (the "shapes" set).
    val_indices
        A predefined validation split (MNIST: its 10,000 test images), or ``None``.
    """

    def __init__(
        self,
        data: np.ndarray | _HDF5Rows,
        *,
        name: str,
        scaling: str | None = None,
        labels: np.ndarray | None = None,
        label_names: list[str] | None = None,
        factors: dict[str, np.ndarray] | None = None,
        val_indices: np.ndarray | None = None,
        spec: str | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(data, _HDF5Rows) or hasattr(data, "read"):  # byo: any row source
            self._array: np.ndarray | None = None
            self._source: _HDF5Rows | None = data
            n, sample_shape, stored = data.n, data.sample_shape, data.stored_dtype
        else:
            data = np.asarray(data)
            if data.dtype != np.uint8:
                data = data.astype(np.float32, copy=False)
            if data.ndim < 2:
                raise ValueError(f"data must be [N, *sample_shape], not shape {data.shape}")
            self._array, self._source = data, None
            n, sample_shape, stored = len(data), tuple(data.shape[1:]), data.dtype
        if scaling is None:
            scaling = "uint8/255" if stored == np.uint8 else "none"
        if scaling not in _SCALINGS:
            raise ValueError(f"scaling must be one of {_SCALINGS}, not {scaling!r}")
        if scaling == "uint8/255" and stored != np.uint8:
            raise ValueError("scaling 'uint8/255' needs uint8 data")
        self.name = name
        self.spec = spec if spec is not None else name
        self.sample_shape: tuple[int, ...] = tuple(int(s) for s in sample_shape)
        self.scaling = scaling
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), not {self.labels.shape}")
        self.label_names = label_names
        self.factors = factors
        self.val_indices = None if val_indices is None else np.asarray(val_indices, np.int64)
        self.block_bytes = BLOCK_BYTES
        self._n = int(n)
        self._stored_dtype = np.dtype(stored)
        self._info = dict(info or {})

    # ------------------------------------------------------------------ size and storage
    def __len__(self) -> int:
        return self._n

    @property
    def in_memory(self) -> bool:
        """True when every row is held in memory; False when rows are read from disk."""
        return self._array is not None

    @property
    def sample_size(self) -> int:
        """Numbers per row: the product of ``sample_shape``."""
        return math.prod(self.sample_shape)

    def __repr__(self) -> str:
        where = "in memory" if self.in_memory else "on disk"
        return f"Dataset({self.name!r}, n={self._n}, sample_shape={self.sample_shape}, {where})"

    # ------------------------------------------------------------------ reading
    def read(self, indices: np.ndarray | list[int] | range) -> np.ndarray:
        """Rows ``indices`` (any order, repeats allowed), scaled float32 ``[n, *sample_shape]``."""
        idx = self._check_indices(indices)
        if self._array is not None:
            raw = self._array[idx]
        else:
            raw = self._read_from_disk(idx)
        return self._scale(raw)

    def to_numpy(self) -> np.ndarray:
        """Every row as float32 ``[N, *sample_shape]``, scaled; in-memory data sets only."""
        if self._array is None:
            raise DataError(
                f"{self.name}: {self._n} rows are read from disk in blocks; "
                "the whole array is too large to load at once"
            )
        return self._scale(self._array)

    def iter_batches(
        self,
        indices: np.ndarray | None = None,
        batch_size: int = 128,
        rng: np.random.Generator | int | None = None,
    ) -> Iterator[np.ndarray]:
        """Shuffled minibatches of float32 rows: every row of ``indices`` once (the last batch may
        be short).

        In-memory data are shuffled as a whole. Out-of-core data are cut into blocks of
        consecutive rows (about ``block_bytes`` each); the blocks come in random order, each is read
        once, and its rows are shuffled within it.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        idx = np.arange(self._n) if indices is None else self._check_indices(indices)
        if self._array is not None:
            order = gen.permutation(idx)
            for start in range(0, len(order), batch_size):
                yield self.read(order[start : start + batch_size])
            return
        rows = np.sort(idx)
        per_block = max(batch_size, self.block_bytes // (4 * self.sample_size))
        starts = np.arange(0, len(rows), per_block)
        carry: np.ndarray | None = None
        for b in gen.permutation(len(starts)):
            x = self.read(rows[starts[b] : starts[b] + per_block])
            x = x[gen.permutation(len(x))]
            if carry is not None:
                x = np.concatenate([carry, x])
                carry = None
            full = len(x) - len(x) % batch_size
            for start in range(0, full, batch_size):
                yield x[start : start + batch_size]
            if full < len(x):
                carry = x[full:]
        if carry is not None:
            yield carry

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary: name, spec, n, sample_shape, scaling, labels, split, source."""
        d: dict[str, Any] = {
            "name": self.name,
            "spec": self.spec,
            "n": self._n,
            "sample_shape": list(self.sample_shape),
            "scaling": self.scaling,
            "stored_dtype": str(self._stored_dtype),
            "in_memory": self.in_memory,
            "labels": None if self.labels is None else "given",
            "label_names": None if self.label_names is None else list(self.label_names),
            "factors": None if self.factors is None else sorted(self.factors),
            "val_split": "predefined" if self.val_indices is not None else "random",
            "n_val_predefined": None if self.val_indices is None else int(len(self.val_indices)),
        }
        d.update(self._info)
        return d

    def close(self) -> None:
        """Close the HDF5 handle, if any; a later read opens it again."""
        if self._source is not None:
            self._source.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _check_indices(self, indices: np.ndarray | list[int] | range) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.size == 0:
            return np.zeros(0, dtype=np.int64)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise IndexError(f"indices must be a 1-D integer array, not {idx.dtype} {idx.shape}")
        idx = idx.astype(np.int64, copy=False)
        if idx.min() < 0 or idx.max() >= self._n:
            raise IndexError(f"indices out of range for {self._n} rows: {idx.min()}..{idx.max()}")
        return idx

    def _scale(self, raw: np.ndarray) -> np.ndarray:
        if self.scaling == "uint8/255":
            out = raw.astype(np.float32)
            out /= np.float32(255.0)
            return out
        return raw.astype(np.float32, copy=False)

    def _read_from_disk(self, idx: np.ndarray) -> np.ndarray:
        """Read sorted runs of rows; rows closer than ``_GAP_BYTES`` are read in one go, and no
        single read spans more than ``_SPAN_BYTES`` (so a scattered selection never loads the
        whole file at once)."""
        assert self._source is not None
        out_shape = (len(idx), *self.sample_shape)
        if len(idx) == 0:
            return np.zeros(out_shape, dtype=self._stored_dtype)
        uniq, inverse = np.unique(idx, return_inverse=True)
        row_bytes = self.sample_size * self._stored_dtype.itemsize
        max_gap = max(1, _GAP_BYTES // row_bytes)
        span_rows = max(1, _SPAN_BYTES // row_bytes)
        new_run = (np.diff(uniq) > max_gap) | (np.diff(uniq // span_rows) != 0)
        breaks = np.flatnonzero(new_run) + 1
        got = np.empty((len(uniq), *self.sample_shape), dtype=self._stored_dtype)
        lo = 0
        for hi in [*breaks.tolist(), len(uniq)]:
            first, last = int(uniq[lo]), int(uniq[hi - 1])
            rows = self._source.read(first, last + 1)
            got[lo:hi] = rows[uniq[lo:hi] - first]
            lo = hi
        return got[inverse]


# =========================================================================== load_dataset
def load_dataset(
    spec: str,
    labels: str | None = None,
    max_samples: int | None = None,
    *,
    memory_limit: int | None = None,
) -> Dataset:
    """Open a data set by its spec.

    Parameters
    ----------
    spec
        ``"mnist"``, ``"shapes"`` (64x64), ``"shapes:32"`` / ``"shapes:64"``, or
        ``"FILE.h5"`` / ``"FILE.h5:group/array"``.
    labels
        Path of an integer label array in the same HDF5 file (HDF5 files only; the built-in sets
        carry their own labels).
    max_samples
        Keep only the first ``max_samples`` rows (MNIST: the first rows of its training and test
        parts in proportion 6:1, so the predefined validation split stays valid).
    memory_limit
        HDF5 only: load the array whole if it takes at most this many bytes in memory
        (default ``IN_MEMORY_LIMIT``); else read it from disk in blocks.
    """
    spec = str(spec).strip()
    if not spec:
        raise DataError("no data set given: use mnist, shapes, shapes:32 or FILE.h5[:array]")
    _check_max_samples(max_samples)
    low = spec.lower()
    builtin = low == "mnist" or low == "shapes" or low.startswith("shapes:")
    if builtin and labels:
        raise DataError(
            f"{spec}: a labels array applies to HDF5 files only; built-in sets have their own"
        )
    if low == "mnist":
        return load_mnist(max_samples=max_samples)
    if builtin:
        size_text = low.partition(":")[2] or "64"
        if size_text not in {str(s) for s in SHAPES_SIZES}:
            raise DataError(f"{spec}: the shapes set comes as shapes:32 or shapes:64 (the default)")
        n = SHAPES_N if max_samples is None else min(max_samples, SHAPES_N)
        return make_shapes(n=n, size=int(size_text), seed=0)
    from models.data import arrays, images  # byo: NumPy files and image folders

    if arrays.is_array_spec(spec):
        return arrays.open_arrays(spec, labels, max_samples=max_samples, memory_limit=memory_limit)
    if images.is_image_folder(spec):
        return images.open_image_folder(spec, labels, max_samples=max_samples)
    return open_hdf5(spec, labels, max_samples=max_samples, memory_limit=memory_limit)


def _check_max_samples(max_samples: int | None) -> None:
    if max_samples is not None and max_samples < MIN_SAMPLES:
        raise ConfigError(f"max_samples must be at least {MIN_SAMPLES}, not {max_samples}")


# =========================================================================== split
def split_indices(
    dataset: Dataset, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices, each sorted, disjoint, together every row.

    A predefined split (``dataset.val_indices``, e.g. MNIST's test set) is used as it is and
    ``val_fraction`` is ignored; otherwise a random ``val_fraction`` of the rows, drawn with
    ``seed``, is held out. Each side gets at least one row.
    """
    n = len(dataset)
    if n < 2:
        raise DataError(f"{dataset.name}: {n} rows cannot be split into training and validation")
    if dataset.val_indices is not None:
        val = np.unique(dataset.val_indices)
        mask = np.ones(n, dtype=bool)
        mask[val] = False
        train = np.flatnonzero(mask)
        if len(train) == 0 or len(val) == 0:
            raise DataError(f"{dataset.name}: its predefined validation split leaves a side empty")
        return train.astype(np.int64), val.astype(np.int64)
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), not {val_fraction}")
    n_val = min(max(int(round(val_fraction * n)), 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


# =========================================================================== MNIST
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
    _check_max_samples(max_samples)
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


# =========================================================================== shapes
_SHAPE_EXTENT = 0.2  # half-extent of a shape at scale 1, as a fraction of the image size
_SHAPE_CHUNK = 2048  # images rendered at once (bounds the temporaries to a few MB)


def make_shapes(n: int = SHAPES_N, size: int = 64, seed: int = 0) -> Dataset:
    """A dSprites-like set: one white shape on black per image, uint8 ``[n, 1, size, size]``.

    Factors, drawn uniformly and independently: ``shape`` (0 square, 1 ellipse, 2 heart,
    3 triangle), ``scale`` in [0.5, 1], ``rotation`` in [0, 2 pi) radians (anticlockwise),
    ``x`` and ``y`` in [0, 1] (left to right, top to bottom; the shape always lies inside the
    image). Pixels are 0 or 255 (a pixel is on when its centre lies inside the shape).
    Each factor has its own random stream, so ``make_shapes(k)`` is the first k rows of
    ``make_shapes(n)`` for k <= n, and the same seed gives identical bytes.
    """
    if size not in SHAPES_SIZES:
        raise ConfigError(f"shapes come in sizes {SHAPES_SIZES}, not {size}")
    if n < 1:
        raise ConfigError(f"the shapes set needs at least 1 image, not {n}")

    def stream(k: int) -> np.ndarray:
        return np.random.default_rng([seed, k]).random(n)

    factors = {
        "shape": np.minimum((stream(0) * len(SHAPE_NAMES)).astype(np.int64), len(SHAPE_NAMES) - 1),
        "scale": (0.5 + 0.5 * stream(1)).astype(np.float32),
        "rotation": (2.0 * np.pi * stream(2)).astype(np.float32),
        "x": stream(3).astype(np.float32),
        "y": stream(4).astype(np.float32),
    }
    images = np.zeros((n, 1, size, size), dtype=np.uint8)
    for start in range(0, n, _SHAPE_CHUNK):
        part = slice(start, min(start + _SHAPE_CHUNK, n))
        _render_shapes(images[part, 0], *(factors[k][part] for k in factors))
    name = "shapes" if size == 64 else f"shapes:{size}"
    return Dataset(
        images,
        name=name,
        scaling="uint8/255",
        labels=factors["shape"].copy(),
        label_names=list(SHAPE_NAMES),
        factors=factors,
        spec=name,
        info={"source": f"generated shapes, seed {seed}", "labels": "built-in", "seed": seed},
    )


def _render_shapes(
    out: np.ndarray,
    shape: np.ndarray,
    scale: np.ndarray,
    rotation: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
) -> None:
    """Draw shapes into ``out`` [n, size, size] (zeros); each in a square patch about its centre."""
    n, size = out.shape[0], out.shape[1]
    h_max = _SHAPE_EXTENT * size
    r = int(math.ceil(h_max + 0.5))  # patch half-width: every pixel the shape can touch
    d = np.arange(-r, r + 1, dtype=np.float32)
    span = np.float32(size - 2 * r - 1)
    cx = np.float32(r) + x * span  # centre in pixel units, pixel (i, j) has centre (j+.5, i+.5)
    cy = np.float32(r) + y * span
    ix, iy = np.floor(cx), np.floor(cy)
    px = (d + np.float32(0.5))[None, :] - (cx - ix)[:, None]  # [n, P] offsets to the right
    py = (cy - iy)[:, None] - (d + np.float32(0.5))[None, :]  # [n, P] offsets upwards
    h = (scale * np.float32(h_max))[:, None, None]
    cos, sin = np.cos(rotation)[:, None, None], np.sin(rotation)[:, None, None]
    pxb, pyb = px[:, None, :], py[:, :, None]
    u = (pxb * cos + pyb * sin) / h  # shape coordinates: the shape fits in the unit disc
    v = (pyb * cos - pxb * sin) / h
    inside = np.zeros(u.shape, dtype=bool)
    for k, test in enumerate(_SHAPE_TESTS):
        sel = np.flatnonzero(shape == k)
        if len(sel):
            inside[sel] = test(u[sel], v[sel])
    rows = iy.astype(np.int64)[:, None] + np.arange(-r, r + 1)
    cols = ix.astype(np.int64)[:, None] + np.arange(-r, r + 1)
    out[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = inside * np.uint8(255)


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    half = np.float32(1 / math.sqrt(2))
    return (np.abs(u) <= half) & (np.abs(v) <= half)


def _ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + (v / np.float32(0.6)) ** 2 <= 1


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # (X^2 + Y^2 - 1)^3 <= X^2 Y^3; the curve lies within radius 1.25 of (0, 0.25).
    hx, hy = u * np.float32(1.25), v * np.float32(1.25) + np.float32(0.25)
    q = hx * hx + hy * hy - 1
    return q * q * q <= hx * hx * hy * hy * hy


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral, circumradius 1, one vertex up: inside all three edges at distance 1/2.
    c = np.float32(math.sqrt(3) / 2)
    return (v >= -0.5) & (c * u + 0.5 * v <= 0.5) & (-c * u + 0.5 * v <= 0.5)


_SHAPE_TESTS = (_square, _ellipse, _heart, _triangle)


# =========================================================================== HDF5 files
def parse_hdf5_spec(spec: str) -> tuple[str, str | None]:
    """Split ``"FILE.h5:group/array"`` into the file and the array path (``None`` if absent).

    An existing file whose name contains a colon is taken whole; a Windows drive letter is kept.
    """
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    path, _, array = spec.rpartition(":")
    if len(path) == 1 and path.isalpha():  # "C:\data.h5": a drive letter, no array path
        return spec, None
    return path, (array.strip("/") or None)


class _HDF5Rows:
    """An HDF5 array read in row ranges; one lazily opened handle per process, behind a lock."""

    def __init__(
        self,
        path: str,
        array: str,
        n: int,
        sample_shape: tuple[int, ...],
        stored_dtype: np.dtype,
        check_finite: bool,
    ) -> None:
        self.path, self.array, self.n = path, array, n
        self.sample_shape = sample_shape
        self.stored_dtype = np.dtype(stored_dtype)
        self.check_finite = check_finite
        self._file: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as ``[m, *sample_shape]`` in the stored dtype, checked finite."""
        with self._lock:
            if self._file is None or self._pid != os.getpid():
                self._file = _open_h5(self.path)
                self._pid = os.getpid()
            try:
                raw = self._file[self.array][start:stop]
            except (OSError, KeyError, RuntimeError) as exc:
                raise DataError(
                    f"{self.path}: reading rows {start}-{stop - 1} of {self.array!r} failed "
                    f"(truncated or damaged file): {_first_line(exc)}"
                ) from None
        with np.errstate(over="ignore", invalid="ignore"):  # too large for float32: caught below
            rows = raw.astype(self.stored_dtype, copy=False)
        rows = rows.reshape(stop - start, *self.sample_shape)
        if self.check_finite:
            _check_finite(rows, self.path, self.array, start)
        return rows

    def close(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file, self._pid = None, None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_file=None, _pid=None, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def open_hdf5(
    spec: str,
    labels: str | None = None,
    *,
    max_samples: int | None = None,
    memory_limit: int | None = None,
) -> Dataset:
    """Open an array of an HDF5 file as a data set (see the module docstring and docs/data.md).

    ``spec`` is ``"FILE.h5"`` (the first numeric array of rank 2 to 4, in name order) or
    ``"FILE.h5:group/array"``. Rows: ``N x D`` -> ``(D,)``, ``N x H x W`` -> ``(1, H, W)``,
    ``N x C x H x W`` -> ``(C, H, W)`` with C in 1..4. uint8 data are scaled by 1/255; every
    other numeric type is read as float32, unscaled. ``labels`` names an integer array of length
    N in the same file.
    """
    _check_max_samples(max_samples)
    limit = IN_MEMORY_LIMIT if memory_limit is None else int(memory_limit)
    path, array_path = parse_hdf5_spec(spec)
    try:
        return _open_hdf5(spec, path, array_path, labels, max_samples, limit)
    except LatentExplorerError:
        raise
    except (RuntimeError, OSError, KeyError, ValueError, TypeError) as exc:
        # h5py raises these from a damaged (not truncated) file's metadata: listing its objects
        # ("Object visitation failed"), a dataset's shape or dtype, its attributes.
        raise DataError(f"{path}: damaged HDF5 file ({_first_line(exc)})") from None


def _open_hdf5(
    spec: str,
    path: str,
    array_path: str | None,
    labels: str | None,
    max_samples: int | None,
    limit: int,
) -> Dataset:
    with _open_h5(path) as f:
        dset = _find_array(f, path, array_path, labels)
        array_path = dset.name.lstrip("/")
        shape, n = tuple(int(s) for s in dset.shape), int(dset.shape[0])
        sample_shape = _sample_shape(shape, path, array_path)
        stored = _stored_dtype(dset.dtype, path, array_path)
        if n < MIN_SAMPLES:
            raise DataError(
                f"{path}: {array_path!r} has {n} samples; at least {MIN_SAMPLES} are needed"
            )
        if max_samples is not None:
            n = min(n, max_samples)
        label_arr, label_names = (None, None)
        if labels:
            label_arr, label_names = _read_labels(f, path, labels, int(shape[0]))
            label_arr = label_arr[:n]
        check = stored.kind == "f"
        nbytes = n * math.prod(sample_shape) * stored.itemsize
        source = _HDF5Rows(path, array_path, n, sample_shape, stored, check)
        data: np.ndarray | _HDF5Rows = source
        if nbytes <= limit:
            data = np.empty((n, *sample_shape), dtype=stored)
            step = max(1, _CHECK_BYTES // max(1, math.prod(sample_shape) * stored.itemsize))
            for start in range(0, n, step):
                stop = min(n, start + step)
                try:
                    raw = dset[start:stop]
                except (OSError, RuntimeError) as exc:
                    raise DataError(
                        f"{path}: reading {array_path!r} failed (truncated or damaged file): "
                        f"{_first_line(exc)}"
                    ) from None
                with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                    data[start:stop] = raw.reshape(stop - start, *sample_shape)
                if check:
                    _check_finite(data[start:stop], path, array_path, start)
    name = f"{path}:{array_path}"
    return Dataset(
        data,
        name=name,
        scaling="uint8/255" if stored == np.uint8 else "none",
        labels=label_arr,
        label_names=label_names,
        spec=spec,
        info={
            "source": "hdf5",
            "file": os.path.abspath(path),
            "array": array_path,
            "file_shape": list(shape),
            "file_dtype": str(dset.dtype),
            "labels": labels or None,
            "max_samples": max_samples,
        },
    )


def _open_h5(path: str) -> Any:
    import h5py

    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not an HDF5 file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {_first_line(exc)}") from None
    if not is_hdf5:
        raise DataError(f"{path}: not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(
            f"{path}: cannot be opened as HDF5 (truncated or damaged file): {_first_line(exc)}"
        ) from None


def _list_arrays(f: Any) -> list[tuple[str, tuple[int, ...], Any]]:
    import h5py

    found: list[tuple[str, tuple[int, ...], Any]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found.append((name, tuple(obj.shape or ()), obj.dtype))

    f.visititems(visit)
    return sorted(found, key=lambda t: t[0])


def _describe_arrays(arrays: list[tuple[str, tuple[int, ...], Any]]) -> str:
    if not arrays:
        return "the file holds no arrays"
    text = ", ".join(
        f"{name} {'x'.join(map(str, shape)) or 'scalar'} {_dtype_text(dtype)}"
        for name, shape, dtype in arrays[:8]
    )
    more = f" and {len(arrays) - 8} more" if len(arrays) > 8 else ""
    return f"arrays in the file: {text}{more}"


def _dtype_text(dtype: Any) -> str:
    if dtype.fields is not None:
        return "compound"
    return "strings" if dtype.kind in "OSU" else str(dtype)


def _is_numeric(dtype: Any) -> bool:
    return dtype.fields is None and dtype.kind in "biuf"


def _find_array(f: Any, path: str, array_path: str | None, labels: str | None) -> Any:
    import h5py

    if array_path is None:
        labels_key = (labels or "").strip("/")
        for name, shape, dtype in _list_arrays(f):
            if name != labels_key and len(shape) >= 2 and _is_numeric(dtype):
                return f[name]
        raise DataError(
            f"{path}: no numeric array of rank 2 to 4 to use as data; "
            f"{_describe_arrays(_list_arrays(f))}"
        )
    obj = _get(f, array_path)
    if obj is None:
        raise DataError(f"{path}: no array {array_path!r}; {_describe_arrays(_list_arrays(f))}")
    if isinstance(obj, h5py.Group):
        inner = [(f"{array_path}/{n}", s, d) for n, s, d in _list_arrays(obj)]
        raise DataError(
            f"{path}: {array_path!r} is a group, not an array; {_describe_arrays(inner)}"
        )
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{path}: {array_path!r} is not an array")
    return obj


def _get(f: Any, key: str) -> Any:
    try:
        return f.get(key)
    except (KeyError, OSError, RuntimeError, ValueError):
        return None


def _sample_shape(shape: tuple[int, ...], path: str, name: str) -> tuple[int, ...]:
    text = "x".join(map(str, shape)) or "scalar"
    if len(shape) < 2 or len(shape) > 4:
        raise DataError(
            f"{path}: {name!r} has rank {len(shape)} ({text}); data must be N x D, N x H x W or "
            "N x C x H x W"
        )
    if shape[0] == 0 or 0 in shape:
        raise DataError(f"{path}: {name!r} is empty ({text})")
    if len(shape) == 2:
        return (shape[1],)
    if len(shape) == 3:
        return (1, shape[1], shape[2])
    if not 1 <= shape[1] <= 4:
        hint = " (channels last? store it as N x C x H x W)" if shape[3] <= 4 else ""
        raise DataError(
            f"{path}: {name!r} is {text}; N x C x H x W images need 1 to 4 channels{hint}"
        )
    return shape[1:]


def _stored_dtype(dtype: Any, path: str, name: str) -> np.dtype:
    if not _is_numeric(dtype):
        raise DataError(
            f"{path}: {name!r} holds non-numeric values ({_dtype_text(dtype)}); numbers are needed"
        )
    return np.dtype(np.uint8) if dtype == np.uint8 else np.dtype(np.float32)


def _check_finite(rows: np.ndarray, path: str, name: str, first_row: int) -> None:
    flat = rows.reshape(len(rows), -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        row = first_row + int(np.argmax(bad))
        raise DataError(
            f"{path}: {name!r} has NaN or infinite values (first in row {row}; "
            "values beyond float32 count as infinite)"
        )


def _read_labels(f: Any, path: str, labels: str, n: int) -> tuple[np.ndarray, list[str] | None]:
    import h5py

    key = labels.strip("/")
    obj = _get(f, key)
    if obj is None:
        raise DataError(f"{path}: no labels array {key!r}; {_describe_arrays(_list_arrays(f))}")
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{path}: labels {key!r} is a group, not an array")
    if obj.dtype.fields is not None or obj.dtype.kind not in "iu":
        raise DataError(f"{path}: labels {key!r} must hold integers, not {obj.dtype}")
    shape = tuple(obj.shape or ())
    if len(shape) == 2 and shape[1] == 1:
        shape = shape[:1]
    if len(shape) != 1 or shape[0] != n:
        raise DataError(
            f"{path}: labels {key!r} has shape {'x'.join(map(str, obj.shape)) or 'scalar'}; "
            f"one label per sample ({n}) is needed"
        )
    try:
        values = np.asarray(obj[()]).reshape(n).astype(np.int64)
    except (OSError, RuntimeError) as exc:
        raise DataError(
            f"{path}: reading labels {key!r} failed (truncated or damaged file): {_first_line(exc)}"
        ) from None
    names = _label_names(obj, values)
    return values, names


def _label_names(obj: Any, values: np.ndarray) -> list[str] | None:
    """Names of label values 0..K-1: the array's ``label_names`` attribute, else the numbers."""
    if values.min() < 0:
        return None
    k = int(values.max()) + 1
    attr = obj.attrs.get("label_names")
    if attr is not None:
        names = [a.decode() if isinstance(a, bytes) else str(a) for a in np.ravel(attr)]
        if len(names) >= k:
            return names
    return [str(i) for i in range(k)] if k <= 1000 else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
