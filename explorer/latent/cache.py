"""The explorer's cache of each run's exported decoder and encodings, so a switch back is instant.

An entry is a folder named by :func:`cache_key` (the run file's absolute path, its size and
modification time, and which rows were encoded: a run written again gets a new key) holding
``decoder.onnx`` and ``encodings.npz``. :class:`RunCache` lives in a folder the app passes in
(the user's cache folder, ``QStandardPaths.CacheLocation``) and keeps the whole under a size
limit, dropping the entries used least recently. Plain files and numpy: no Qt, safe in a task.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from typing import Any

import numpy as np

#: What the cache may hold on disk before its oldest entries go.
DEFAULT_LIMIT_BYTES = 1 << 30

DECODER = "decoder.onnx"
ENCODINGS = "encodings.npz"


def cache_key(run_path: str, which: str) -> str:
    """The entry of ``run_path`` as it is on disk now (path, size, mtime) and ``which`` rows."""
    path = os.path.abspath(run_path)
    st = os.stat(path)
    text = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0{which}"
    stem = os.path.splitext(os.path.basename(path))[0][:40] or "run"
    return f"{stem}-{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def _pack_samples(x: np.ndarray) -> dict[str, np.ndarray]:
    """8-bit rows (k / 255, binarised ones included) stored as bytes: a quarter of the size."""
    as_bytes = np.round(x * 255.0).clip(0, 255).astype(np.uint8)
    if np.array_equal(as_bytes.astype(np.float32) / np.float32(255.0), x):
        return {"samples_u8": as_bytes}
    return {"samples": np.asarray(x, dtype=np.float32)}


def _dir_size(folder: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


class RunCache:
    """Decoders and encodings of runs already explored, in ``folder``, within ``limit_bytes``."""

    def __init__(self, folder: str, limit_bytes: int = DEFAULT_LIMIT_BYTES) -> None:
        self.folder = folder
        self.limit_bytes = int(limit_bytes)

    def entry(self, key: str) -> str:
        return os.path.join(self.folder, key)

    def has(self, key: str) -> bool:
        e = self.entry(key)
        return os.path.isfile(os.path.join(e, DECODER)) and os.path.isfile(os.path.join(e, ENCODINGS))

    def decoder_path(self, key: str) -> str:
        return os.path.join(self.entry(key), DECODER)

    def load(self, key: str) -> dict[str, Any] | None:
        """The entry's arrays (``means``, ``logvar``, ``indices``, ``samples``, ``labels``,
        ``label_names``, ``description``), or None when it is missing or unreadable."""
        if not self.has(key):
            return None
        try:
            with np.load(os.path.join(self.entry(key), ENCODINGS), allow_pickle=False) as f:
                data = {name: f[name] for name in f.files}
        except (OSError, ValueError, KeyError):
            shutil.rmtree(self.entry(key), ignore_errors=True)  # damaged: made again next time
            return None
        os.utime(self.entry(key))  # used now: evicted last
        if "samples_u8" in data:
            data["samples"] = data.pop("samples_u8").astype(np.float32) / np.float32(255.0)
        out: dict[str, Any] = {k: data.get(k) for k in ("means", "logvar", "indices", "samples",
                                                         "labels")}
        names = data.get("label_names")
        out["label_names"] = None if names is None or names.size == 0 else [str(n) for n in names]
        out["description"] = str(data.get("description", np.array("")))
        return out

    def store(self, key: str, decoder_file: str, *, means: np.ndarray, logvar: np.ndarray,
              indices: np.ndarray, samples: np.ndarray | None, labels: np.ndarray | None,
              label_names: list[str] | None, description: str) -> None:
        """Write an entry (complete or not at all: built beside it, then renamed), then evict."""
        os.makedirs(self.folder, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=self.folder)
        try:
            shutil.copyfile(decoder_file, os.path.join(staging, DECODER))
            arrays: dict[str, np.ndarray] = {"means": means, "logvar": logvar, "indices": indices,
                                             "description": np.array(description)}
            if samples is not None:
                arrays.update(_pack_samples(samples))
            if labels is not None:
                arrays["labels"] = labels
            if label_names:
                arrays["label_names"] = np.array([str(n) for n in label_names])
            np.savez(os.path.join(staging, ENCODINGS), **arrays)
            target = self.entry(key)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.evict(keep=key)

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove the least recently used entries until the cache fits its limit."""
        try:
            names = [n for n in os.listdir(self.folder) if not n.startswith(".")]
        except OSError:
            return []
        entries = []
        for name in names:
            path = self.entry(name)
            try:
                entries.append((os.path.getmtime(path), _dir_size(path), name))
            except OSError:
                continue
        total = sum(size for _t, size, _n in entries)
        removed = []
        for _t, size, name in sorted(entries):
            if total <= self.limit_bytes:
                break
            if name == keep:
                continue
            shutil.rmtree(self.entry(name), ignore_errors=True)
            total -= size
            removed.append(name)
        return removed
