"""Following a run file that another process writes (``latent-explorer train``).

:func:`read_rows` reads what a file holds beyond the rows already shown (on the GUI thread only
for a short file, :data:`INLINE_ROWS`); :func:`follow_run` is the task that reads a longer
file's rows and polls a file being written from a thread of its own, handing each batch of new
rows to the GUI thread as a partial result, until the file's status is no longer ``running``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..state.status import RunStatus
from ..tasks import TaskState

#: Seconds between two looks at a followed file.
POLL_S = 0.5

#: Step rows a file may hold for its first read to be done on the GUI thread (well under a
#: millisecond); a longer run is read by the task (a 4,690-step run took 15 ms).
INLINE_ROWS = 500


@dataclass
class RunRows:
    """New rows of a run file and its status: plain data, from a thread to the GUI thread."""

    steps: dict[str, np.ndarray] = field(default_factory=dict)
    epochs: dict[str, np.ndarray] = field(default_factory=dict)
    verdicts: list[str] = field(default_factory=list)
    status: RunStatus = RunStatus.UNKNOWN
    message: str = ""

    @property
    def n_steps(self) -> int:
        return len(self.steps.get("step", ()))

    @property
    def n_epochs(self) -> int:
        return len(self.epochs.get("epoch", ()))


def run_status(reader: Any) -> tuple[RunStatus, str]:
    """The file's status and message; ``interrupted`` when it says running but its writer,
    on this machine, is gone (killed): nothing more will come."""
    status, message = RunStatus.parse(reader.status), reader.message
    if status is RunStatus.RUNNING and reader.writer_alive() is False:
        pid = reader.writer[1]
        return RunStatus.INTERRUPTED, (f"the process that wrote it (pid {pid}) ended without "
                                       "closing it; it holds every epoch flushed before")
    return status, message


def read_rows(reader: Any, n_steps: int, n_epochs: int) -> RunRows:
    """The rows of ``reader`` after the first ``n_steps`` steps and ``n_epochs`` epochs."""
    rows = RunRows()
    if reader.n_steps > n_steps:  # read the new rows only
        steps = reader.steps(start=n_steps)
        rows.steps = {k: v for k, v in steps.items() if v.dtype != object}
    if reader.n_epochs > n_epochs:
        epochs = reader.epochs(start=n_epochs)
        rows.verdicts = [str(v) for v in epochs.get("verdict", np.array([], dtype=object))]
        rows.epochs = {k: v for k, v in epochs.items() if v.dtype != object}
    rows.status, rows.message = run_status(reader)
    return rows


def total_steps(reader: Any) -> int | None:
    """Steps the run will take: epochs x ceil(training rows / batch size), when recorded."""
    cfg = reader.config
    n_train = (reader.dataset_info or {}).get("n_train")
    if not n_train:
        return None
    return -(-int(n_train) // int(cfg.train.batch_size)) * int(cfg.train.epochs)


def follow_run(state: TaskState, path: str, n_steps: int, n_epochs: int,
               status: RunStatus = RunStatus.RUNNING, message: str = "",
               interval_s: float = POLL_S, read_now: bool = False) -> RunStatus:
    """The task: poll ``path`` every ``interval_s`` for rows beyond those given, hand each change
    to the GUI thread (``RunRows``), and return the status that ended the run (``Cancelled``
    when the user closes it first). ``read_now``: the first look is at once (the rows of a file
    just opened, read here rather than on the GUI thread), and it ends there unless running."""
    from models.io.runfile import RunReader

    with RunReader(path) as reader:
        first = read_now
        while True:
            if not first:
                state.wait(interval_s)
            state.raise_if_interrupted()
            if not first:
                reader.refresh()
            first = False
            rows = read_rows(reader, n_steps, n_epochs)
            n_steps += rows.n_steps
            n_epochs += rows.n_epochs
            if rows.n_steps or rows.n_epochs or (rows.status, rows.message) != (status, message):
                status, message = rows.status, rows.message
                state.set_partial_result(rows)
            if status is not RunStatus.RUNNING:
                return status
