"""HDF5 files as data: the spec ``FILE.h5[:group/array]``, checks, listing arrays, reading rows.

Arrays up to ``IN_MEMORY_LIMIT`` bytes (as stored here: uint8, or float32) are loaded whole; larger
ones stay on disk and are read in contiguous runs of rows through :class:`HDF5Rows`. Every problem
with the user's file raises ``DataError`` with one line naming the file and the problem;
``docs/data.md`` lists them.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.data.dataset import MIN_SAMPLES, Dataset, RowSource, check_max_samples
from models.errors import DataError, LatentExplorerError, first_line

IN_MEMORY_LIMIT = 1 << 30
"""HDF5 arrays up to this many bytes (as stored in memory: uint8 or float32) are loaded whole."""

_CHECK_BYTES = 16 << 20  # rows per chunk when loading or checking a file, in bytes


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


class HDF5Rows:
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
                    f"(truncated or damaged file): {first_line(exc)}"
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
    check_max_samples(max_samples)
    limit = IN_MEMORY_LIMIT if memory_limit is None else int(memory_limit)
    path, array_path = parse_hdf5_spec(spec)
    try:
        return _open_hdf5(spec, path, array_path, labels, max_samples, limit)
    except LatentExplorerError:
        raise
    except (RuntimeError, OSError, KeyError, ValueError, TypeError) as exc:
        # h5py raises these from a damaged (not truncated) file's metadata: listing its objects
        # ("Object visitation failed"), a dataset's shape or dtype, its attributes.
        raise DataError(f"{path}: damaged HDF5 file ({first_line(exc)})") from None


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
        shape = tuple(int(s) for s in dset.shape)
        sample_shape = _sample_shape(shape, path, array_path)  # the rank before shape[0]
        n = shape[0]
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
        source = HDF5Rows(path, array_path, n, sample_shape, stored, check)
        data: np.ndarray | RowSource = source
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
                        f"{first_line(exc)}"
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
    """Opened safely (models.data.hdf5_safety): a bounded open, no links or external storage."""
    from models.data.hdf5_safety import open_hdf5

    return open_hdf5(path, DataError)


def _list_arrays(f: Any) -> list[tuple[str, tuple[int, ...], Any]]:
    """Every array (h5py Dataset) below ``f``, with its shape and dtype, sorted by path."""
    import h5py

    found: list[tuple[str, tuple[int, ...], Any]] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            found.append((name, tuple(int(s) for s in obj.shape or ()), obj.dtype))

    f.visititems(visit)
    return sorted(found, key=lambda t: t[0])


@dataclass(frozen=True)
class ArrayInfo:
    """One numeric array of an HDF5 file."""

    path: str  # inside the file, e.g. "images/train"
    shape: tuple[int, ...]
    dtype: str

    @property
    def is_data(self) -> bool:
        """Usable as data: N x D, N x H x W or N x C x H x W."""
        return 2 <= len(self.shape) <= 4

    @property
    def is_labels(self) -> bool:
        """Usable as labels: one integer per row."""
        return len(self.shape) == 1 and self.dtype.startswith(("int", "uint", "bool"))

    def describe(self) -> str:
        return f"{self.path}  ({' x '.join(map(str, self.shape))}, {self.dtype})"


def list_arrays(path: str) -> list[ArrayInfo]:
    """The numeric arrays of an HDF5 file, sorted by path. Reads metadata only, so it is cheap
    enough for a GUI thread; problems raise DataError with one line naming the file."""
    with _open_h5(path) as f:
        try:
            arrays = _list_arrays(f)
        except (OSError, RuntimeError) as exc:
            raise DataError(
                f"{path}: cannot be opened as HDF5 (truncated or damaged file): {first_line(exc)}"
            ) from None
    return [ArrayInfo(name, shape, dtype.name) for name, shape, dtype in arrays if _is_numeric(dtype)]


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
            f"{path}: reading labels {key!r} failed (truncated or damaged file): {first_line(exc)}"
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

