"""Temporaries a killed writer left behind: ``RUN.h5.tmp-PID`` beside a run file.

The run-file writer builds its file as ``RUN.h5.tmp-PID`` and renames it into place; a kill
during creation leaves the temporary (17-25 MB) forever. :func:`remove_stale_temps` removes
those whose process is gone (:func:`models.io.liveness.process_alive`, with the temporary's
modification time as the latest moment its writer can have started); a live writer's temporary
is kept.
"""

from __future__ import annotations

import os
import re
import socket

from models.io.liveness import process_alive

_SUFFIX = re.compile(r"\.tmp-(\d{1,10})$")


def stale_temps(path: str | os.PathLike) -> list[str]:
    """The ``PATH.tmp-PID`` files beside ``path`` whose process is gone (sorted)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    out = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        if not name.startswith(base + ".tmp-"):
            continue
        match = _SUFFIX.search(name)
        if match is None or name != f"{base}.tmp-{match.group(1)}":
            continue
        full = os.path.join(folder, name)
        try:
            st = os.lstat(full)
        except OSError:
            continue
        if not os.path.isfile(full) or os.path.islink(full):
            continue
        if process_alive(socket.gethostname(), int(match.group(1)), st.st_mtime) is False:
            out.append(full)
    return sorted(out)


def remove_stale_temps(path: str | os.PathLike) -> list[str]:
    """Remove :func:`stale_temps` of ``path``; returns the names removed (a file that cannot be
    removed is left, silently: it is someone else's problem, not this run's)."""
    removed = []
    for name in stale_temps(path):
        try:
            os.unlink(name)
        except OSError:
            continue
        removed.append(name)
    return removed
