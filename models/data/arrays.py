"""NumPy files as data sets: ``FILE.npy`` and ``FILE.npz[:array]``, memory-mapped where possible.

Rows follow the HDF5 rules: ``N x D``, ``N x H x W`` (one channel) or ``N x C x H x W`` (C in
1..4); uint8 values are scaled by 1/255, every other numeric type is read as float32, unscaled;
NaN or infinite values are refused with the first row named. Files are opened read-only and
never written; ``allow_pickle`` stays off, so no file can make us run code.

Memory: a ``.npy`` file and an *uncompressed* ``.npz`` member (``np.savez``) are memory-mapped
(the member's bytes sit whole inside the zip file, so they are mapped at their offset). Arrays up
to ``memory_limit`` bytes (as stored here) are then copied into memory in chunks, checked as
they come; larger ones stay on disk and are read in row ranges, checked as read, so a file
larger than memory trains. A *compressed* member (``np.savez_compressed``) cannot be mapped: it is
decompressed into memory whole if it fits ``memory_limit``, else refused with a line saying to
save it with ``np.save`` or ``np.savez``.

Labels (``labels=``): another array of the same ``.npz`` by name, or a file ``LABELS.npy`` /
``OTHER.npz:array``; integers, one per row.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import zipfile
from typing import Any

import numpy as np

from models.data.dataset import MIN_SAMPLES, Dataset, check_max_samples
from models.data.hdf5 import _CHECK_BYTES, IN_MEMORY_LIMIT, _check_finite, _sample_shape
from models.errors import DataError

SUFFIXES = (".npy", ".npz")


def parse_array_spec(spec: str) -> tuple[str, str | None]:
    """``"FILE.npz:array"`` -> (file, array); ``"FILE.npy"`` -> (file, None)."""
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    path, _, member = spec.rpartition(":")
    if len(path) == 1 and path.isalpha():  # a Windows drive letter
        return spec, None
    return path, (member or None)


def is_array_spec(spec: str) -> bool:
    """True for a spec naming a ``.npy`` or ``.npz`` file (with or without ``:array``)."""
    return parse_array_spec(spec)[0].lower().endswith(SUFFIXES)


class _Mapped:
    """Where an array's bytes are in a file, as a lazily (re)opened read-only memmap."""

    def __init__(self, path: str, offset: int, dtype: np.dtype, shape: tuple[int, ...],
                 fortran: bool) -> None:
        self.path, self.offset, self.dtype = path, offset, np.dtype(dtype)
        self.shape, self.fortran = shape, fortran
        self._mm: np.ndarray | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def array(self) -> np.ndarray:
        with self._lock:
            if self._mm is None or self._pid != os.getpid():
                need = self.offset + self.dtype.itemsize * math.prod(self.shape)
                if os.path.getsize(self.path) < need:
                    raise DataError(f"{self.path}: truncated: the array needs {need} bytes, the "
                                    f"file has {os.path.getsize(self.path)}")
                self._mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                                     shape=self.shape, order="F" if self.fortran else "C")
                self._pid = os.getpid()
            return self._mm

    def close(self) -> None:
        with self._lock:
            self._mm, self._pid = None, None

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, _mm=None, _pid=None, _lock=None)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class _ArrayRows:
    """A row source for ``Dataset``: row ranges of a mapped array, converted and checked."""

    def __init__(self, mapped: _Mapped, name: str, n: int, sample_shape: tuple[int, ...],
                 stored: np.dtype) -> None:
        self.mapped, self.name, self.n = mapped, name, n
        self.sample_shape, self.stored_dtype = sample_shape, np.dtype(stored)
        self.path = mapped.path

    def read(self, start: int, stop: int) -> np.ndarray:
        try:
            raw = np.asarray(self.mapped.array()[start:stop])
        except OSError as exc:
            raise DataError(f"{self.path}: reading rows {start}-{stop - 1} failed: {exc}") from None
        with np.errstate(over="ignore", invalid="ignore"):
            rows = raw.astype(self.stored_dtype).reshape(stop - start, *self.sample_shape)
        if self.stored_dtype.kind == "f":
            _check_finite(rows, self.path, self.name, start)
        return rows

    def close(self) -> None:
        self.mapped.close()


# --------------------------------------------------------------------------- locating an array
def _npy_header(fh: Any, path: str, what: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: {what} is not a NumPy array ({_first(exc)})") from None
    if dtype.hasobject:
        raise DataError(f"{path}: {what} holds Python objects; only numbers can be loaded "
                        "(pickled data are never read)")
    return tuple(int(s) for s in shape), bool(fortran), np.dtype(dtype), fh.tell()


def _locate_npy(path: str) -> _Mapped:
    with _open(path) as fh:
        shape, fortran, dtype, offset = _npy_header(fh, path, "the file")
    return _Mapped(path, offset, dtype, shape, fortran)


def _members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    return {i.filename.removesuffix(".npy"): i for i in zf.infolist() if i.filename.endswith(".npy")}


def _locate_member(path: str, info: zipfile.ZipInfo, name: str) -> _Mapped | None:
    """A stored (uncompressed) member as a mapping at its offset; None for a compressed one."""
    if info.flag_bits & 0x1:
        raise DataError(f"{path}: array {name!r} is encrypted")
    with _open(path) as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise DataError(f"{path}: damaged zip file (array {name!r} has no local header)")
        n_name, n_extra = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + n_name + n_extra)
        if info.compress_type == zipfile.ZIP_STORED:
            shape, fortran, dtype, offset = _npy_header(fh, path, f"array {name!r}")
            return _Mapped(path, offset, dtype, shape, fortran)
    return None


def _load_compressed(path: str, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
                     limit: int) -> np.ndarray:
    with zf.open(info) as fh:
        shape, fortran, dtype, _ = _npy_header(fh, path, f"array {name!r}")
    stored = 1 if dtype == np.uint8 else 4
    if math.prod(shape) * stored > limit:
        raise DataError(
            f"{path}: array {name!r} is compressed ({'x'.join(map(str, shape))}), so it cannot be "
            "memory-mapped and is too large to load; save it with np.save or np.savez"
        )
    try:
        with zf.open(info) as fh:
            return np.lib.format.read_array(fh, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: array {name!r} cannot be read (damaged file: {_first(exc)})") from None


def _open(path: str) -> Any:
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a NumPy file")
    return open(path, "rb")


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _array_of(spec_path: str, member: str | None, labels_key: str | None,
              limit: int) -> tuple[_Mapped | np.ndarray, str]:
    """The data array of a .npy/.npz spec (mapped, or in memory) and its name in messages."""
    if spec_path.lower().endswith(".npy"):
        if member is not None:
            raise DataError(f"{spec_path}: a .npy file holds one array; drop ':{member}'")
        return _locate_npy(spec_path), os.path.basename(spec_path)
    _open(spec_path).close()
    try:
        zf = zipfile.ZipFile(spec_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{spec_path}: not a .npz file (not a zip archive: {_first(exc)})") from None
    with zf:
        members = _members(zf)
        if not members:
            raise DataError(f"{spec_path}: the .npz file holds no arrays")
        if member is None:
            names = [m for m in sorted(members) if m != labels_key]
            if not names:
                raise DataError(f"{spec_path}: no array to use as data besides the labels")
            member = names[0]
        if member not in members:
            raise DataError(f"{spec_path}: no array {member!r}; arrays in the file: "
                            f"{', '.join(sorted(members)[:8])}")
        info = members[member]
        found = _locate_member(spec_path, info, member)
        if found is None:
            return _load_compressed(spec_path, zf, info, member, limit), member
    return found, member


def _stored(dtype: np.dtype, path: str, name: str) -> np.dtype:
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise DataError(f"{path}: {name!r} holds {dtype} values; numbers are needed")
    return np.dtype(np.uint8) if dtype == np.uint8 else np.dtype(np.float32)


# --------------------------------------------------------------------------- the data set
def open_arrays(spec: str, labels: str | None = None, *, max_samples: int | None = None,
                memory_limit: int | None = None) -> Dataset:
    """Open ``FILE.npy`` or ``FILE.npz[:array]`` as a data set (see the module docstring)."""
    check_max_samples(max_samples)
    limit = IN_MEMORY_LIMIT if memory_limit is None else int(memory_limit)
    path, member = parse_array_spec(str(spec).strip())
    same_npz = path.lower().endswith(".npz") and labels and not is_array_spec(labels)
    found, name = _array_of(path, member, labels if same_npz else None, limit)
    shape = tuple(found.shape)
    dtype = found.dtype
    sample_shape = _sample_shape(shape, path, name)
    stored = _stored(np.dtype(dtype), path, name)
    n_file = int(shape[0])
    if n_file < MIN_SAMPLES:
        raise DataError(f"{path}: {name!r} has {n_file} samples; at least {MIN_SAMPLES} are needed")
    n = n_file if max_samples is None else min(n_file, max_samples)
    lab, lab_names = (None, None)
    if labels:
        lab, lab_names = _labels(path, labels, n_file, bool(same_npz), limit)
        lab = lab[:n]
    nbytes = n * math.prod(sample_shape) * stored.itemsize
    mapped = isinstance(found, _Mapped)
    if mapped and nbytes > limit:
        data: Any = _ArrayRows(found, name, n, sample_shape, stored)
    else:
        src = found.array() if mapped else found
        data = np.empty((n, *sample_shape), dtype=stored)
        step = max(1, _CHECK_BYTES // max(1, math.prod(sample_shape) * stored.itemsize))
        for s in range(0, n, step):
            e = min(n, s + step)
            with np.errstate(over="ignore", invalid="ignore"):
                data[s:e] = np.asarray(src[s:e]).reshape(e - s, *sample_shape)
            if stored.kind == "f":
                _check_finite(data[s:e], path, name, s)
        if mapped:
            found.close()
    return Dataset(
        data, name=f"{path}:{name}" if path.lower().endswith(".npz") else path,
        scaling="uint8/255" if stored == np.uint8 else "none", labels=lab, label_names=lab_names,
        spec=spec,
        info={"source": "numpy", "file": os.path.abspath(path), "array": name,
              # absolute, so a run's data load again from any directory (runfile.data_spec)
              "spec": os.path.abspath(path) + (f":{name}" if path.lower().endswith(".npz") else ""),
              "file_shape": list(shape), "file_dtype": str(dtype), "labels": labels or None,
              "max_samples": max_samples,
              "storage": ("compressed member, decompressed into memory" if not mapped else
                          "memory-mapped, read from disk" if not isinstance(data, np.ndarray) else
                          "copied into memory through a memory map")},
    )


def _labels(path: str, labels: str, n: int, same_npz: bool,
            limit: int) -> tuple[np.ndarray, list[str] | None]:
    if same_npz:
        found, name = _array_of(path, labels, None, limit)
        where = path
    elif is_array_spec(labels):
        where, member = parse_array_spec(labels)
        found, name = _array_of(where, member, None, limit)
    else:
        raise DataError(f"{labels}: labels of a .npy file are a .npy file or FILE.npz:array")
    values = found.array() if isinstance(found, _Mapped) else found
    shape = tuple(values.shape)
    if len(shape) == 2 and shape[1] == 1:
        shape = shape[:1]
    if values.dtype.kind not in "iu" or len(shape) != 1 or shape[0] != n:
        raise DataError(
            f"{where}: labels {name!r} are {values.dtype} {'x'.join(map(str, values.shape))}; "
            f"one integer label per sample ({n}) is needed"
        )
    out = np.asarray(values).reshape(n).astype(np.int64)
    if out.min() < 0:
        return out, None
    k = int(out.max()) + 1
    return out, ([str(i) for i in range(k)] if k <= 1000 else None)
