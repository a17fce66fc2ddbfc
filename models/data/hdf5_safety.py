"""Opening HDF5 files we did not write ourselves (run files, data files) safely.

Every reader of an HDF5 file goes through :func:`open_hdf5`:

- a FIFO, device or directory is refused before HDF5 touches it (reading a FIFO blocks forever);
- the file is opened normally first; only when HDF5 says the file is *open for write* (a live
  SWMR writer, or one killed with SIGKILL) is it opened again in SWMR-read mode. Any other error
  (a short truncation: ``head -c 16 run.h5``) is one line at once, instead of HDF5's SWMR
  metadata retry loop, which slept 14 minutes on such a file;
- both opens limit HDF5's metadata read attempts (:data:`READ_ATTEMPTS`), so a damaged file that
  is also open for write fails in well under a second instead of retrying for minutes;
- :func:`check_tree` refuses, naming the object, anything that makes HDF5 read another file:
  datasets with external storage, virtual datasets, external links; and soft links, so that every
  path we read names one object of this file.

numpy and h5py only. Errors are raised as the caller's one-line error class (RunFileError for run
files, DataError for data files).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
from collections.abc import Iterator

import h5py
from h5py._objects import phil as _HDF5_LOCK  # the lock h5py takes around every libhdf5 call

from models.data.files import check_regular_file
from models.errors import LatentExplorerError

__all__ = ["check_dataset", "check_regular_file", "check_tree", "open_hdf5", "opened"]

#: Metadata read attempts per object (HDF5's default for SWMR readers is 100, with back-off).
READ_ATTEMPTS = 10
#: A file with more objects than this is refused (visiting them all must stay quick).
MAX_OBJECTS = 100_000
_OPEN_FOR_WRITE = "already open for write"
_LOCKED = "unable to lock file"
# What h5py raises from damaged metadata (SystemError: an error inside a visit callback).
_H5_ERRORS = (OSError, RuntimeError, ValueError, KeyError, TypeError, SystemError)


def _error_line(exc: BaseException) -> str:
    """HDF5's reason, e.g. "incorrect metadata checksum after all read attempts"."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = re.fullmatch(r"Unable to (?:synchronously )?open file \((.*)\)", text)
    return (match.group(1) if match else text)[:200]


@functools.lru_cache(maxsize=1)
def _set_read_attempts():
    """``H5Pset_metadata_read_attempts`` of the libhdf5 h5py loaded (h5py does not wrap it), or
    None where it cannot be found (then HDF5's defaults apply)."""
    try:
        with open("/proc/self/maps") as fh:
            libs = sorted({line.split()[-1] for line in fh if "libhdf5" in line and "_hl" not in line
                           and ".so" in line})
        for lib in libs:
            func = getattr(ctypes.CDLL(lib), "H5Pset_metadata_read_attempts", None)
            if func is not None:
                func.argtypes = [ctypes.c_int64, ctypes.c_uint]
                func.restype = ctypes.c_int
                return func
    except OSError:
        pass
    return None


def _fapl(swmr: bool) -> h5py.h5p.PropFAID:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    if swmr:
        fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    setter = _set_read_attempts()
    if setter is not None:
        # ctypes releases the GIL and h5py does not know of this call: without h5py's own lock
        # it ran inside libhdf5 while another thread's read did, which broke HDF5's state
        # ("no VOL object wrap context") in the app's stress test (1 in 4 runs).
        with _HDF5_LOCK:
            setter(fapl.id, READ_ATTEMPTS)
    return fapl


def is_open_for_write_error(exc: BaseException) -> bool:
    """Whether an HDF5 open failed only because the file is marked open for write (SWMR)."""
    return _OPEN_FOR_WRITE in str(exc)


def open_hdf5(path: str | os.PathLike, error: type[LatentExplorerError], *, what: str = "an HDF5 file",
              check: bool = True) -> h5py.File:
    """Open ``path`` read-only as described in the module docstring; with ``check``, run
    :func:`check_tree` on it. ``error(one line)`` on any problem; the file is closed then."""
    name = os.fspath(path)
    check_regular_file(name, error, what)
    try:
        if not h5py.is_hdf5(name):
            raise error(f"{name}: not an HDF5 file, so not {what}")
    except OSError as exc:
        raise error(f"{name}: cannot read: {exc.strerror or exc}") from None
    f = _open(name, error)
    if check:
        try:
            check_tree(f, error, name)
        except BaseException:
            f.close()
            raise
    return f


def _open(name: str, error: type[LatentExplorerError]) -> h5py.File:
    try:
        return _low_open(name, swmr=False)
    except _H5_ERRORS as exc:
        if _LOCKED in str(exc):  # HDF5's file lock: a plain (not SWMR) writer has it open
            raise error(f"{name}: another program has it open for writing and does not let it be "
                        "read meanwhile (it is not in SWMR mode); open it once that program has closed it") from None
        if not is_open_for_write_error(exc):
            raise error(f"{name}: cannot be opened as HDF5 (truncated or damaged file: {_error_line(exc)})") from None
    try:  # a live SWMR writer, or one that was killed: read what it flushed
        return _low_open(name, swmr=True)
    except _H5_ERRORS as exc:
        raise error(f"{name}: cannot be opened as HDF5 (truncated or damaged file: {_error_line(exc)})") from None


def _low_open(name: str, swmr: bool) -> h5py.File:
    flags = h5py.h5f.ACC_RDONLY | (h5py.h5f.ACC_SWMR_READ if swmr else 0)
    fid = h5py.h5f.open(os.fsencode(name), flags, fapl=_fapl(swmr))
    return h5py.File(fid)


# --------------------------------------------------------------------------- what a file names
def _links(group: h5py.Group) -> Iterator[tuple[str, object]]:
    """(path, link) of every link below ``group``, without following soft or external links."""
    found: list[tuple[str, object]] = []
    group.visititems_links(lambda name, link: found.append((name, link)) and None)
    yield from found


def check_tree(f: h5py.File, error: type[LatentExplorerError], name: str | None = None) -> None:
    """Refuse soft links, external links, datasets stored in other files and virtual datasets
    anywhere in ``f`` (one line naming the object), and files with over :data:`MAX_OBJECTS`."""
    name = name or f.filename
    try:
        links = list(_links(f))
    except _H5_ERRORS as exc:
        raise error(f"{name}: damaged HDF5 file ({_error_line(exc)})") from None
    if len(links) > MAX_OBJECTS:
        raise error(f"{name}: holds over {MAX_OBJECTS} objects; not a file this program reads")
    for path, link in links:
        if isinstance(link, h5py.ExternalLink):
            raise error(f"{name}: '/{path}' is a link to another file ({link.filename}); refused")
        if isinstance(link, h5py.SoftLink):
            raise error(f"{name}: '/{path}' is a soft link (to {link.path}); refused")
        if not isinstance(link, h5py.HardLink):
            raise error(f"{name}: '/{path}' is a link of an unknown kind; refused")
        try:
            obj = f.get(path)
            if isinstance(obj, h5py.Dataset):
                check_dataset(obj, error, name)
        except LatentExplorerError:
            raise
        except _H5_ERRORS as exc:
            raise error(f"{name}: '/{path}' is damaged ({_error_line(exc)})") from None


def check_dataset(ds: h5py.Dataset, error: type[LatentExplorerError], name: str | None = None) -> None:
    """Refuse a dataset whose values live outside its file (external storage or virtual)."""
    name = name or ds.file.filename
    dcpl = ds.id.get_create_plist()
    if dcpl.get_external_count() > 0:
        raise error(f"{name}: '{ds.name}' keeps its values in another file (external storage); refused")
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        raise error(f"{name}: '{ds.name}' is a virtual dataset made of other files' data; refused")


@contextlib.contextmanager
def opened(path: str | os.PathLike, error: type[LatentExplorerError], **kwargs) -> Iterator[h5py.File]:
    """``with opened(path, DataError) as f:`` :func:`open_hdf5`, closed at the end."""
    f = open_hdf5(path, error, **kwargs)
    try:
        yield f
    finally:
        f.close()
