"""Whether the process that writes a file still runs.

The run-file writer records ``writer_host`` and ``writer_pid`` (root attributes) and ``created``
(Unix time); its temporaries are named ``RUN.h5.tmp-PID``. A process is taken for the writer when
it runs on this machine with that pid, is not a zombie, and started before the file was created
(a process with the same pid that started later got a reused pid: the writer is gone).
"""

from __future__ import annotations

import contextlib
import os
import socket

import h5py
import numpy as np

from models.data.hdf5_safety import open_hdf5
from models.errors import RunFileError

# Seconds of slack between a process's start and its file's creation (clock ticks, rounding).
_START_SLACK = 2.0


def attr_text(value: object) -> str:
    """An HDF5 attribute or fixed-length string as text (bytes decoded, NULs stripped)."""
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", errors="replace").strip("\x00")
    return str(value)


def _process_start(pid: int) -> tuple[float | None, str | None]:
    """(Unix start time, state letter) of a process from /proc; (None, None) where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/stat") as fh:
            boot = next(float(line.split()[1]) for line in fh if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), fields[0]
    except (OSError, ValueError, IndexError, StopIteration):
        return None, None


def process_alive(host: str | None, pid: int | None, since: float | None = None) -> bool | None:
    """Whether process ``pid`` on ``host`` runs and may be the writer of a file created at
    ``since``: None when that cannot be told (another machine, no pid recorded)."""
    if host is None or pid is None or host != socket.gethostname() or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        pass
    except OSError:
        return None
    started, state = _process_start(pid)
    if state in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    if started is not None and since is not None and started > since + _START_SLACK:
        return False  # a newer process got the pid
    return True


def run_writer(f: h5py.File) -> tuple[str | None, int | None, float | None]:
    host, pid = f.attrs.get("writer_host"), f.attrs.get("writer_pid")
    created = f["created"][()] if "created" in f else None
    return (
        attr_text(host) if host is not None else None,
        int(pid) if pid is not None else None,
        float(created) if created is not None else None,
    )


def writer_alive(path: str | os.PathLike) -> bool | None:
    """Whether the process that writes run file ``path`` still runs (True/False), or None when
    that cannot be told (written on another machine, or by a version that did not record it).

    Writer side: ``RunWriter`` records ``writer_host``/``writer_pid`` at creation (it does); a
    ``--force`` that replaces a file calls this first and refuses while it is True.
    """
    with contextlib.closing(open_hdf5(path, RunFileError, what="a run file", check=False)) as f:
        if "status" in f and attr_text(f["status"][()]) != "running":
            return False  # its writer finished with it (finished, stopped, diverged, error)
        return process_alive(*run_writer(f))


def refuse_live_writer(path: str | os.PathLike) -> None:
    """RunFileError with one line when ``path`` is a run file whose writer still runs: ``train
    --force`` must not replace a file another run is writing (two runs both printed "wrote" and
    one was lost). A file that cannot be read (damaged, not a run file) is not refused here."""
    name = os.fspath(path)
    if not os.path.exists(name):
        return
    try:
        alive = writer_alive(name)
    except RunFileError:
        return
    if alive:
        raise RunFileError(
            f"{name}: another run (its writer is still running) writes this file; "
            "--force will not replace it: stop that run first, or choose another --out"
        )


def file_replaced(path: str | os.PathLike, f: h5py.File) -> bool:
    """Whether ``path`` no longer names the file ``f`` has open (it was replaced or removed
    under its writer); False where that cannot be told."""
    try:
        st = os.stat(os.fspath(path))
        own = os.fstat(f.id.get_vfd_handle())
    except (OSError, ValueError, RuntimeError):
        return not os.path.exists(os.fspath(path))
    return (st.st_dev, st.st_ino) != (own.st_dev, own.st_ino)
