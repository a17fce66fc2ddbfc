"""A path checked before any reader opens it: an existing, non-empty regular file.

Standard library only, so that every reader (the torch-free ONNX runtime too) shares this rule:
a FIFO or a device would block or never end, a directory is not a file.
"""

from __future__ import annotations

import os
import stat

from models.errors import LatentExplorerError


def check_regular_file(path: str, error: type[LatentExplorerError], what: str) -> os.stat_result:
    """``os.stat(path)`` of an existing, non-empty regular file; ``error`` with one line otherwise."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{path}: is a directory, not {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file (a pipe or a device), so not {what}")
    if st.st_size == 0:
        raise error(f"{path}: empty file, not {what}")
    return st
