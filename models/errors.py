"""The errors a user can cause. Each carries one readable line: what file, what is wrong.

The CLI turns any of them into exit status 2 and that one line on stderr; the GUI shows it in a
dialog. Anything else is a bug and keeps its traceback.
"""

import os


class LatentExplorerError(Exception):
    """Base of the errors caused by input (files, data, settings), not by a bug."""


class ConfigError(LatentExplorerError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataError(LatentExplorerError, ValueError):
    """A data set cannot be used: not HDF5, truncated, no such array, NaN values, ..."""


class RunFileError(LatentExplorerError, ValueError):
    """A run file cannot be read or written: not a run file, wrong version, exists already, ..."""


class TrainingError(LatentExplorerError, RuntimeError):
    """A run could not go on: the loss became non-finite, the data do not suit the model, ..."""


class ExportError(LatentExplorerError, RuntimeError):
    """An ONNX export failed or did not verify; no file was left behind."""


class ModelFileError(LatentExplorerError, ValueError):
    """An ONNX model file cannot be used: not ONNX, truncated, wrong input, latent size mismatch."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, or its type's name when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def error_line(exc: BaseException) -> str:
    """The one line a user sees for any exception: ours carry it; an OSError says what went
    wrong (a full disk, a missing file), naming its file; anything else (a bug) is prefixed
    with its type."""
    if isinstance(exc, LatentExplorerError):
        return first_line(exc)
    if isinstance(exc, OSError):
        detail = exc.strerror or first_line(exc)
        return f"{os.fsdecode(exc.filename)}: {detail}" if exc.filename is not None else detail
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def file_exists(path: object, error: type[LatentExplorerError]) -> LatentExplorerError:
    """The error for an output file that exists already and may be replaced only with --force."""
    return error(f"{path}: file exists (use --force to replace it)")
