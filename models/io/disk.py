"""Free space before a write, and telling a full disk from other write errors.

h5py reports a failed write only when objects are freed, and the next ``flush()`` on that handle
crashed the process (exit 139) on a full disk. The writer checks :func:`check_free_space` before
each flush and, after any write error where :func:`is_disk_full` holds, stops touching the handle
and reports one line.
"""

from __future__ import annotations

import errno
import os

from models.errors import LatentExplorerError, RunFileError

#: Kept free beyond what a write needs (HDF5 metadata, the file system's own reserve).
MARGIN_BYTES = 2**20


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes an unprivileged process may still write on ``path``'s file system."""
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        folder = os.path.dirname(os.path.abspath(folder))
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


def check_free_space(path: str | os.PathLike, need: int,
                     error: type[LatentExplorerError] = RunFileError) -> None:
    """Raise ``error`` with one line when ``path``'s disk has less than ``need`` bytes (plus
    :data:`MARGIN_BYTES`) free; a disk whose free space cannot be read passes."""
    try:
        free = free_bytes(path)
    except OSError:
        return
    if free < need + MARGIN_BYTES:
        raise error(
            f"{os.fspath(path)}: the disk is (nearly) full: {free / 2**20:.1f} MB free, "
            f"about {(need + MARGIN_BYTES) / 2**20:.1f} MB needed"
        )


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (an OSError, or h5py's error text) says the disk or quota is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left" in text or "disk quota exceeded" in text
