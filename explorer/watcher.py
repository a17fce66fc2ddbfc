"""Following a run file another process writes: read what it holds now, then follow it.

A :class:`RunWatcher` reads the file's description on the GUI thread (a bad file raises
``RunFileError`` with one line) and, for a short file, its rows too (shown at once); a longer
file's rows are read by a task (:func:`explorer.jobs.follow.follow_run`, ``read_now``), which
also follows a file that says ``running``; rows are appended to the session here, on the GUI
thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from .jobs.follow import INLINE_ROWS, POLL_S, RunRows, follow_run, read_rows, run_status, total_steps
from .state import RunSession, RunStatus
from .tasks import Task


def apply_rows(session: RunSession, rows: RunRows) -> None:
    """Append a batch of rows read from a run file to ``session``, and take its status."""
    if rows.steps:
        session.extend_steps(rows.steps)
    if rows.epochs:
        session.extend_epochs(rows.epochs, rows.verdicts)
    session.set_status(rows.status, rows.message)


class RunWatcher(QObject):
    """Shows a run file in ``session`` and follows it while it is being written.

    Signals: ``failed(str)`` when the file becomes unreadable; ``stopped()`` when following ends.
    """

    failed = Signal(str)
    stopped = Signal()

    def __init__(self, path: str, session: RunSession, interval_ms: int = int(POLL_S * 1000),
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        from models.io.runfile import RunReader

        self.path = path
        self.session = session
        self.task: Task | None = None
        with RunReader(path) as reader:  # raises RunFileError with one line
            session.set_info(config=reader.config, path=path, dataset_info=reader.dataset_info,
                             total_steps=total_steps(reader))
            #: The file is being written: followed until it ends (else read once).
            self.following = run_status(reader)[0] is RunStatus.RUNNING
            inline = reader.n_steps - len(session.steps) <= INLINE_ROWS
            if inline:  # a short file: shown at once
                apply_rows(session, read_rows(reader, len(session.steps), len(session.epochs)))
        if self.following or not inline:  # a long file's rows (and status) come from the task
            self.task = Task("follow", follow_run, path, len(session.steps), len(session.epochs),
                             RunStatus.UNKNOWN if not inline else session.status,
                             session.message, interval_ms / 1000.0, not inline)
            self.task.partial.connect(self._on_rows)
            self.task.error.connect(self.failed)
            self.task.finished.connect(self._on_finished)
            self.task.start()

    @property
    def watching(self) -> bool:
        return self.task is not None and self.task.running

    def stop(self) -> None:
        """Stop following (within one poll interval)."""
        if self.task is not None:
            self.task.cancel()

    @Slot(object)
    def _on_rows(self, rows: RunRows) -> None:
        apply_rows(self.session, rows)

    @Slot(object)
    def _on_finished(self, _status: object) -> None:
        self.stopped.emit()
