"""Atomic writes: a hidden temporary file beside the target, renamed over it when complete.

Standard library only (the torch-free ``decode`` command uses it, as does the ONNX export).
Failures raise an OSError that names the target, never the temporary file, and leave no
temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from models.errors import LatentExplorerError, file_exists


def temp_prefix(path: str) -> str:
    """A hidden temporary file's prefix beside ``path``; short enough that any file name the
    directory allows still leaves room for it."""
    return f".{os.path.basename(path)[:40]}."


def _naming(path: str, exc: OSError) -> OSError:
    return OSError(exc.errno, exc.strerror or str(exc), path)


@contextlib.contextmanager
def _or_remove(tmp: str, path: str) -> Iterator[None]:
    """On any failure inside, remove ``tmp``; an OSError is re-raised naming ``path``."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(path, exc) from None
        raise


def write_temp_beside(path: str, data: bytes, *, fsync: bool = False) -> str:
    """Write ``data`` into a new hidden file in ``path``'s directory, with the permissions a new
    file gets (the umask's), and return its name; ``fsync`` forces it to disk first."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise _naming(path, exc) from None
    with _or_remove(tmp, path):
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    return tmp


def replace_from(tmp: str, path: str) -> None:
    """Rename the temporary file ``tmp`` over ``path``; on failure remove ``tmp``."""
    with _or_remove(tmp, path):
        os.replace(tmp, path)


def _name_max(directory: str) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_target(path: str | os.PathLike, overwrite: bool, error: type[LatentExplorerError]) -> None:
    """Raise ``error`` (one line) unless a file can be written at ``path``: its directory exists
    and is writable, its name fits, it is not a directory, and it does not exist unless
    ``overwrite``. Cheap, so callers check every target before slow work."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise error(f"{path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise error(f"{path}: is a directory")
    if os.path.exists(path) and not overwrite:
        raise file_exists(path, error)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise error(f"{path}: directory {parent} is not writable")
    size, limit = len(os.fsencode(os.path.basename(path))), _name_max(parent)
    if size > limit:
        raise error(f"{path}: file name too long ({size} bytes; at most {limit} here)")
