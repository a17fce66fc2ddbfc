"""Following a run file another process writes: read what it holds now, then follow it.

A :class:`RunWatcher` reads the file once on the GUI thread (so opening a finished run shows it
at once, and a bad file raises ``RunFileError`` with one line), then, while the file says
``running``, follows it with a task (:func:`explorer.jobs.follow.follow_run`) whose new rows
are appended to the session here, on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal, Slot

from .jobs.follow import POLL_S, RunRows, follow_run, read_rows, total_steps
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
            rows = read_rows(reader, len(session.steps), len(session.epochs))
        apply_rows(session, rows)
        if session.status is RunStatus.RUNNING:
            self.task = Task("follow", follow_run, path, len(session.steps), len(session.epochs),
                             session.status, session.message, interval_ms / 1000.0)
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
