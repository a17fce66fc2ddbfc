"""Run files: one HDF5 file per training run, written in SWMR mode so it can be read as it grows.

This module holds the layout every reader and writer shares: the format's name and version, the
per-step and per-epoch columns, the fixed-size text fields. The writer
(``models.io.run_writer``) creates every group and dataset up front, then switches the file to
SWMR (single-writer/multiple-reader) mode, in which HDF5 allows no new objects or attributes:
rows are appended to resizable datasets, the status, message and weights are overwritten in place
(the weights through a staging copy, so that a run killed while saving them still holds one whole
set). A reader (``models.io.run_reader``; another process, or another handle in this one) opens
the file with ``swmr=True`` and calls ``RunReader.refresh`` to see new rows. Because every flush
leaves the file consistent, a run killed with SIGKILL leaves a readable file holding every
flushed epoch. The file is written during training by a callback of the trainer
(``models.io.run_callback``).

The layout (every group and dataset, dtype, shape and meaning) is documented in docs/runfile.md.
Nothing is pickled: the configuration and data set description are JSON, the weights plain arrays
keyed by their ``state_dict`` names.
"""

from models.io.run_layout import (
    EPOCH_COLUMNS, EPOCH_MATRICES, EPOCH_STRINGS, FLUSH_SECONDS, FORMAT_NAME, FORMAT_VERSION,
    MESSAGE_BYTES, STATUS_BYTES, STATUSES, STEP_COLUMNS, STEP_MATRICES, VERDICT_BYTES,
)
from models.io.run_reader import RunReader, data_spec
from models.io.run_writer import RunWriter, check_run_target

__all__ = [
    "EPOCH_COLUMNS", "EPOCH_MATRICES", "EPOCH_STRINGS", "FLUSH_SECONDS", "FORMAT_NAME",
    "FORMAT_VERSION", "MESSAGE_BYTES", "STATUSES", "STATUS_BYTES", "STEP_COLUMNS", "STEP_MATRICES",
    "VERDICT_BYTES", "RunReader", "RunWriter", "check_run_target", "data_spec",
]
