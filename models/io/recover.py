"""Recovering a run file whose writer died: ``latent-explorer recover RUN.h5``.

A training process killed with SIGKILL leaves its run file marked "open for write" (the SWMR
writer's consistency flags): our reader opens it (SWMR read), but plain ``h5py.File(path, "r")``,
``h5dump`` and every other HDF5 tool refuse it. :func:`recover` makes it a normal HDF5 file
holding everything that was flushed, with status ``interrupted`` and a message saying when:

1. the file is opened read-only (:func:`models.io.hdf5_safety.open_hdf5`: SWMR only when it is
   marked open for write, no files it names);
2. a file that opens normally and is not a ``running`` run whose writer is gone needs nothing:
   it is left alone (``nothing to do``);
3. a file whose writer is alive is refused (:func:`writer_alive`);
4. every object is copied into a new file beside it (``.RUN.h5.recover-PID``), the step and
   epoch tables cut to the rows every column holds (a partial row of a kill mid-append is
   dropped), status and message set; a writer killed while it copied a staged set of weights
   over ``weights/`` (``weights_staged`` = 1) has the copy finished, so that ``weights/`` holds
   one whole set for any HDF5 tool;
5. the copy is closed, opened again with plain h5py and compared with the original, object by
   object, value by value; only then is it renamed over the original. Any failure removes the
   copy and leaves the original as it was.

Whether the writer is alive is :func:`models.io.liveness.writer_alive`.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import h5py
import numpy as np

from models.errors import RunFileError
from models.data.hdf5_safety import check_regular_file, open_hdf5
from models.io.atomic import _or_remove
from models.io.liveness import attr_text as _text
from models.io.liveness import process_alive, run_writer
from models.io.run_layout import FORMAT_NAME
from models.training.events import RunStatus

#: Groups whose datasets are columns of one table (every column has a row per entry).
TABLES = ("steps", "epochs")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


# --------------------------------------------------------------------------- recovery
@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` did: ``changed`` False when the file needed nothing."""

    path: str
    changed: bool
    line: str  # the one line the CLI prints
    rows: dict[str, int]  # rows per table in the result


def _status(f: h5py.File) -> str:
    return _text(f["status"][()]) if "status" in f else ""


def _table_rows(f: h5py.File) -> dict[str, tuple[int, int]]:
    """group -> (rows every column holds, rows the longest column holds)."""
    out = {}
    for group in TABLES:
        if isinstance(f.get(group), h5py.Group):
            lengths = [ds.shape[0] for ds in f[group].values() if isinstance(ds, h5py.Dataset) and ds.ndim]
            out[group] = (min(lengths, default=0), max(lengths, default=0))
    return out


def recover(path: str | os.PathLike) -> Recovery:
    """Make run file ``path`` a normal HDF5 file (see the module docstring); RunFileError with one
    line when it cannot, the original untouched."""
    name = os.fspath(path)
    before = check_regular_file(name, RunFileError, "a run file")
    with contextlib.closing(open_hdf5(name, RunFileError, what="a run file")) as src:
        if src.attrs.get("format") is None or _text(src.attrs["format"]) != FORMAT_NAME:
            raise RunFileError(f"{name}: an HDF5 file, but not a Latent Explorer run file")
        flagged = src.swmr_mode  # opened as SWMR only because it is marked open for write
        host, pid, created = run_writer(src)
        alive = process_alive(host, pid, created)
        status = _status(src)
        rows = _table_rows(src)
        if not flagged and not (status == RunStatus.RUNNING and alive is False):
            counts = {g: r[0] for g, r in rows.items()}
            return Recovery(name, False, f"{name}: nothing to do: it opens in any HDF5 tool "
                                         f"(status {status or 'unknown'})", counts)
        if alive:
            raise RunFileError(
                f"{name}: its writer (pid {pid}) is still running; stop it first, or read the "
                "file while it runs (diagnose and the app do)"
            )
        if alive is None and flagged:
            where = f"on {host}" if host else "by an unknown process"
            raise RunFileError(
                f"{name}: it is open for write {where}, and whether that writer still runs cannot "
                "be told from this machine; run recover where it was written"
            )
        updated = float(src["updated"][()]) if "updated" in src else None
        tmp = os.path.join(os.path.dirname(os.path.abspath(name)),
                           f".{os.path.basename(name)[:60]}.recover-{os.getpid()}")
        with _or_remove(tmp, name):  # the copy goes on any failure; an OSError names the run file
            dropped = _copy(src, tmp, rows)
            message = (
                f"interrupted: the writer (pid {pid}) stopped without closing the file"
                + (f"; last flushed {_iso(updated)}" if updated else "")
                + f"; recovered {_iso(time.time())}"
                + (f"; dropped {dropped} partial row(s)" if dropped else "")
            )
            _finish(tmp, message)
            _verify(src, tmp, rows)
    with _or_remove(tmp, name):
        now = os.stat(name)
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
            raise RunFileError(f"{name}: the file changed while it was being recovered; nothing replaced")
        os.chmod(tmp, stat_mode(before))
        os.replace(tmp, name)
    counts = {g: r[0] for g, r in rows.items()}
    table = ", ".join(f"{n} {g}" for g, n in counts.items())
    return Recovery(name, True, f"recovered {name}: status {RunStatus.INTERRUPTED}, {table} kept; "
                                "it now opens in any HDF5 tool", counts)


def stat_mode(st: os.stat_result) -> int:
    return st.st_mode & 0o7777


def _copy(src: h5py.File, tmp: str, rows: dict[str, tuple[int, int]]) -> int:
    """Copy every object of ``src`` into a new file ``tmp``, tables cut to whole rows; returns
    the number of partial rows dropped."""
    dropped = 0
    with h5py.File(tmp, "w", libver="latest") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for key in src:
            src.copy(src[key], dst, name=key)
        for group, (n, longest) in rows.items():
            dropped += longest - n
            for ds in dst[group].values():
                if isinstance(ds, h5py.Dataset) and ds.ndim and ds.shape[0] > n:
                    ds.resize(n, axis=0)
        dst.flush()
        os.fsync(dst.id.get_vfd_handle())
    return dropped


def _finish(tmp: str, message: str) -> None:
    with h5py.File(tmp, "r+") as dst:
        for key, text in (("status", RunStatus.INTERRUPTED.value), ("message", message)):
            if key in dst:
                ds = dst[key]
                size = ds.dtype.itemsize
                raw = text.encode("utf-8")[:size]
                ds[()] = np.bytes_(raw.decode("utf-8", errors="ignore").encode("utf-8"))
        dst.attrs["recovered"] = time.time()
        if _staged(dst):  # killed while copying the staged set over weights/: finish the copy
            for wname, ds in dst["staged_weights"].items():
                dst["weights"][wname][...] = ds[()]
            dst["weights_step"][()] = dst["staged_weights_step"][()]
            dst["weights_staged"][()] = 0


def _staged(f: h5py.File) -> bool:
    """Whether the writer died between marking the staged weights whole and clearing the mark:
    ``weights/`` may then be half old, half new, and ``staged_weights/`` is the whole set."""
    return ("weights_staged" in f and int(f["weights_staged"][()]) == 1
            and isinstance(f.get("staged_weights"), h5py.Group) and isinstance(f.get("weights"), h5py.Group))


def _verify(src: h5py.File, tmp: str, rows: dict[str, tuple[int, int]]) -> None:
    """Open the copy as any HDF5 tool would (no SWMR) and compare it with ``src``."""
    try:
        dst = h5py.File(tmp, "r")
    except OSError as exc:
        raise RunFileError(f"{tmp}: the recovered copy does not open ({exc}); original kept") from None
    staged = _staged(src)
    with dst:
        names: list[str] = []
        src.visit(names.append)
        for key in names:
            a, b = src[key], dst.get(key)
            if isinstance(a, h5py.Group):
                if not isinstance(b, h5py.Group):
                    raise RunFileError(f"{src.filename}: the recovered copy lacks group /{key}; original kept")
                continue
            if not isinstance(b, h5py.Dataset):
                raise RunFileError(f"{src.filename}: the recovered copy lacks /{key}; original kept")
            if key in ("status", "message"):
                continue
            group = key.split("/", 1)[0] if "/" in key else None
            if staged and (group == "weights" or key == "weights_step"):
                a = src["staged_" + key]  # the copy was finished from the staged set ...
            expect = a[: rows[group][0]] if group in rows and a.ndim else a[()]
            if staged and key == "weights_staged":
                expect = 0  # ... and the mark cleared            expect = a[: rows[group][0]] if group in rows and a.ndim else a[()]
            if not np.array_equal(np.asarray(expect), np.asarray(b[()]), equal_nan=a.dtype.kind == "f"):
                raise RunFileError(f"{src.filename}: the recovered copy differs in /{key}; original kept")
