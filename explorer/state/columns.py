"""Growing numeric columns: a run's per-step and per-epoch history, appended in place."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


class ColumnStore:
    """Named numpy columns of equal length that grow by appending rows, amortised O(1).

    Scalars become float64 columns ``[n]``; 1-d arrays (KL per dimension) become ``[n, d]``
    columns. A missing or ``None`` value is stored as NaN. Columns are created by the first row
    (or block) that names them; a row that lacks a known column writes NaN there.
    """

    def __init__(self) -> None:
        self._cols: dict[str, np.ndarray] = {}
        self._n = 0
        self._cap = 0

    def __len__(self) -> int:
        return self._n

    def names(self) -> list[str]:
        return list(self._cols)

    def __contains__(self, name: str) -> bool:
        return name in self._cols

    def column(self, name: str) -> np.ndarray:
        """A read-only view of the first ``len(self)`` rows of one column (empty if unknown)."""
        if name not in self._cols:
            return np.empty(0)
        view = self._cols[name][: self._n]
        view.flags.writeable = False
        return view

    def __getitem__(self, name: str) -> np.ndarray:
        return self.column(name)

    def last(self, name: str) -> Any:
        if self._n == 0 or name not in self._cols:
            return None
        return self._cols[name][self._n - 1]

    def clear(self) -> None:
        self._cols.clear()
        self._n = self._cap = 0

    def _reserve(self, n: int) -> None:
        if n <= self._cap:
            return
        cap = max(64, self._cap)
        while cap < n:
            cap *= 2
        for name, col in self._cols.items():
            grown = np.full((cap, *col.shape[1:]), np.nan, dtype=col.dtype)
            grown[: self._n] = col[: self._n]
            self._cols[name] = grown
        self._cap = cap

    def _ensure(self, name: str, tail_shape: tuple[int, ...]) -> np.ndarray:
        col = self._cols.get(name)
        if col is None:
            col = np.full((max(self._cap, 64), *tail_shape), np.nan, dtype=np.float64)
            self._cap = max(self._cap, col.shape[0])
            self._cols[name] = col
        elif col.shape[1:] != tail_shape:
            raise ValueError(f"column {name!r} has rows of shape {col.shape[1:]}, not {tail_shape}")
        return col

    def extend(self, block: dict[str, Any]) -> int:
        """Append rows given as columns of equal length; returns the number of rows added."""
        arrays: dict[str, np.ndarray] = {}
        lengths = set()
        for name, values in block.items():
            arr = _numeric(values)
            if arr is None or arr.ndim == 0:
                continue
            arrays[name] = arr
            lengths.add(arr.shape[0])
        if not arrays:
            return 0
        if len(lengths) != 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        k = lengths.pop()
        if k == 0:
            return 0
        for name, arr in arrays.items():
            self._ensure(name, arr.shape[1:])
        self._reserve(self._n + k)
        for name, col in self._cols.items():
            if name in arrays:
                col[self._n : self._n + k] = arrays[name]
            else:
                col[self._n : self._n + k] = np.nan
        self._n += k
        return k

    def append_row(self, row: dict[str, Any]) -> None:
        block = {}
        for name, value in row.items():
            arr = _numeric(value)
            if arr is not None:
                block[name] = arr[None, ...]
        self.extend(block)


def _numeric(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array, or None when it is not numeric (a verdict string, ...)."""
    if value is None:
        return np.array(np.nan)
    if isinstance(value, (str, bytes, list, tuple, dict)):
        return None  # text, and variable-length lists (collapsed_dims): not a column
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr


def event_row(event: Any) -> dict[str, Any]:
    """The fields of an engine event (a dataclass) or a mapping, as a plain dict."""
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    return dict(event)
