"""Run files whose writer is gone: offer to recover them when the app opens them (issue 16).

A training process killed with SIGKILL leaves its run file marked "open for write": the app
reads it as it is (status ``interrupted``), but other HDF5 tools refuse it.
:class:`RecoverOffer` finds such files among those being opened (``RunReader.
effective_status()`` is ``RunStatus.INTERRUPTED``) and asks once, in ONE dialog listing them
all, whether to recover them (``models.io.recover.recover``, run as a task with progress and
Cancel in the status bar: each becomes a normal HDF5 file holding everything that was flushed)
or to open them as they are. Either way they are then opened like any run.

Tests replace :func:`ask_recover` (look it up through the module, as ``dialogs.show_error``).
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QProgressBar, QPushButton, QWidget

from .file_actions import RUN_SUFFIXES
from .jobs.recover import Recovered, recover_task
from .tasks import Task, TaskStatus

RECOVER, AS_IS = "recover", "as is"


def is_interrupted(path: str) -> bool:
    """Whether ``path`` is a run file still marked running whose writer is gone. Anything that
    does not open as a run file is not: opening it reports what is wrong."""
    if not path.lower().endswith(RUN_SUFFIXES) or not os.path.isfile(path):
        return False  # nothing imported: a decoder opens without torch
    from models.io.runfile import RunReader
    from models.training.events import RunStatus

    try:
        with RunReader(path) as reader:
            return reader.effective_status() is RunStatus.INTERRUPTED
    except Exception:  # noqa: BLE001 (the normal open gives the one-line error)
        return False


def ask_recover(parent: QWidget | None, paths: list[str]) -> str | None:
    """One dialog for every interrupted run: ``RECOVER``, ``AS_IS`` or None (open nothing)."""
    names = "".join(f"<li>{os.path.basename(p)}</li>" for p in paths[:20])
    more = f"<li>… and {len(paths) - 20} more</li>" if len(paths) > 20 else ""
    one = len(paths) == 1
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Interrupted run" if one else "Interrupted runs")
    box.setText(("This run was" if one else f"These {len(paths)} runs were")
                + f" interrupted: the writer stopped without closing the file.<ul>{names}{more}</ul>")
    box.setInformativeText(
        "Latent Explorer reads them as they are, but other HDF5 tools (h5py, h5dump) refuse "
        "them. Recover makes each a normal HDF5 file holding everything that was written, "
        "with status 'interrupted'; the original is kept until the copy is verified.")
    recover = box.addButton("Recover", QMessageBox.ButtonRole.AcceptRole)
    as_is = box.addButton("Open as is", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(recover)
    box.exec()
    clicked = box.clickedButton()
    return RECOVER if clicked is recover else AS_IS if clicked is as_is else None


class RecoverOffer(QObject):
    """Intercepts interrupted runs among files being opened (see the module docstring).

    Signals: ``recovered(object)`` the list of :class:`~explorer.jobs.recover.Recovered` (empty
    when cancelled), once the files are open."""

    recovered = Signal(object)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self._task: Task | None = None
        self._paths: list[str] = []
        self._results: list[Recovered] = []
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(200)
        self.progress.setFormat("recovering %v / %m")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop recovering (the files not yet recovered open as they are)")
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.progress, self.cancel_button):
            window.statusBar().addPermanentWidget(w)
            w.hide()

    @property
    def busy(self) -> bool:
        return self._task is not None

    def take(self, paths: list[str]) -> list[str]:
        """The paths to open as usual; the interrupted runs among them are offered recovery in
        one dialog and opened here."""
        paths = [os.path.abspath(p) for p in paths]
        known = {os.path.abspath(s.path) for s in self.window.runs.sessions() if s.path}
        bad = [p for p in paths if p not in known and p not in self._paths and is_interrupted(p)]
        if not bad:
            return paths
        choice = ask_recover(self.window, bad)
        if choice == RECOVER and self._task is None:
            self._start(bad)
        elif choice is not None:
            self._open(bad)
        return [p for p in paths if p not in bad]

    def _start(self, paths: list[str]) -> None:
        self._paths = list(paths)
        task = Task("recover", recover_task, list(paths))
        task.progress.connect(self._on_progress)
        task.result.connect(self._on_result)
        task.error.connect(self.window.show_error)
        task.finished.connect(self._on_done)
        self._task = task
        task.start()
        self.progress.setRange(0, len(paths))
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_button.show()
        self.window.statusBar().showMessage(f"Recovering {len(paths)} run file(s) …", 8000)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _open(self, paths: list[str]) -> None:
        for path in paths:
            if self.window.controller.open_run(path) is not None:
                self.window.add_recent_file(path)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    @Slot(object)
    def _on_result(self, results: list[Recovered]) -> None:
        failed = [r for r in results if not r.ok]
        if failed:
            lines = "; ".join(r.line for r in failed)
            self.window.show_error(f"{len(failed)} of {len(results)} not recovered (opened as "
                                   f"they are): {lines}")
        else:
            self.window.statusBar().showMessage(
                f"Recovered {len(results)} run file(s): they now open in any HDF5 tool", 10000)
        self._results = results

    @Slot(object)
    def _on_done(self, status: TaskStatus) -> None:
        paths, self._paths, self._task = self._paths, [], None
        self.progress.hide()
        self.cancel_button.hide()
        if status is TaskStatus.CANCELLED:
            self.window.statusBar().showMessage("Recovery cancelled; the files open as they are", 8000)
        self._open(paths)  # recovered or not, they open (the app reads them either way)
        results, self._results = self._results, []
        self.recovered.emit(results)

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task.wait(timeout_ms)
