"""The Dataset: rows stored as uint8 or float32, handed out as scaled float32; and its split.

Every data set (``models.data.mnist``, ``shapes``, ``hdf5``) is a ``Dataset``: in memory, or read
from disk through a :class:`RowSource` in contiguous runs of rows. An out-of-core data set reads
through one handle per process, guarded by a lock, so several threads of one process may read it;
a forked or spawned process opens its own handle (a pickled ``Dataset`` carries no handle).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from models.errors import ConfigError, DataError

MIN_SAMPLES = 10
"""A data set needs at least this many rows (so a split leaves both sides non-empty)."""

BLOCK_BYTES = 32 << 20
"""Out-of-core ``iter_batches`` reads blocks of about this many bytes of float32 rows."""

SCALINGS = ("uint8/255", "none")
"""How stored values map to model inputs: bytes divided by 255, or as they are."""
_GAP_BYTES = 256 << 10  # out-of-core reads span gaps up to this size rather than start a new read
_SPAN_BYTES = 64 << 20  # ... but one read covers at most this many bytes of the file


def check_max_samples(max_samples: int | None) -> None:
    """ConfigError unless ``max_samples`` is None or at least ``MIN_SAMPLES``."""
    if max_samples is not None and max_samples < MIN_SAMPLES:
        raise ConfigError(f"max_samples must be at least {MIN_SAMPLES}, not {max_samples}")


@runtime_checkable
class RowSource(Protocol):
    """Rows of an array on disk: ``read(start, stop)`` gives ``[m, *sample_shape]`` in
    ``stored_dtype`` (uint8 or float32), checked; ``close()`` drops the handle."""

    n: int
    sample_shape: tuple[int, ...]
    stored_dtype: np.dtype

    def read(self, start: int, stop: int) -> np.ndarray: ...

    def close(self) -> None: ...


class Dataset:
    """Rows of one data set, stored as uint8 or float32, handed out as scaled float32.

    Parameters
    ----------
    data
        An array ``[N, *sample_shape]`` (uint8 or float32; other floats are converted), or a
        :class:`RowSource` that reads rows from disk (an HDF5 array: ``models.data.hdf5``).
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
        data: np.ndarray | RowSource,
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
        if isinstance(data, RowSource):
            self._array: np.ndarray | None = None
            self._source: RowSource | None = data
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
        if scaling not in SCALINGS:
            raise ValueError(f"scaling must be one of {SCALINGS}, not {scaling!r}")
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

    @property
    def file(self) -> str | None:
        """The absolute path of the file the rows come from (HDF5), or None (built in)."""
        file = self._info.get("file")
        return file if isinstance(file, str) and file else None

    @property
    def absolute_spec(self) -> str:
        """The spec that opens this data set again from any directory: an HDF5 file's absolute
        path and array (``/abs/FILE.h5:array``); a built-in set's spec as it is."""
        array = self._info.get("array")
        if self.file is not None and isinstance(array, str) and array:
            return f"{self.file}:{array}"
        return self.spec

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


def split_indices(
    dataset: Dataset, val_fraction: float = 0.1, seed: int = 0, *,
    max_train: int | None = None, max_val: int | None = None,
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
    from models.data.limits import split_rows  # no N-long arrays for huge N

    return split_rows(n, val_fraction, seed, max_train=max_train, max_val=max_val, name=dataset.name)
