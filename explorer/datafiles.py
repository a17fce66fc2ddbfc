"""What an HDF5 file offers as data: its numeric arrays, for the data set picker.

Reading the names and shapes only touches the file's metadata, so this is cheap enough for the
GUI thread. Problems raise ``models.errors.DataError`` with one line naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from models.errors import DataError


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
    """The numeric arrays of an HDF5 file, sorted by path."""
    import h5py

    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not an HDF5 file")
    try:
        ok = h5py.is_hdf5(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {exc}") from None
    if not ok:
        raise DataError(f"{path}: not an HDF5 file")
    found: list[ArrayInfo] = []

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset) and obj.dtype.fields is None and obj.dtype.kind in "biuf":
            found.append(ArrayInfo(name, tuple(int(s) for s in obj.shape or ()), obj.dtype.name))

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except (OSError, RuntimeError) as exc:
        line = (str(exc).splitlines() or [""])[0]
        raise DataError(f"{path}: cannot be opened as HDF5 (truncated or damaged file): {line}") from None
    return sorted(found, key=lambda a: a.path)
