"""File > Open model…: a VAE trained elsewhere, opened beside the runs (issue 13).

:class:`ModelOpener` runs :func:`explorer.jobs.open_model.open_model_task` (open the ONNX pair
and the data, encode, diagnose once) in a task, with progress and Cancel in the status bar.
When it is done the model is a :class:`~explorer.state.external.ModelSession` in the runs
model: its KL bars, its point on the rate-distortion plane, its diagnosis (Diagnose now: the
IWAE bound, in a task) and, in the latent explorer, the map of its encoded data with labels,
anchors, interpolation and traversals (its decoder, through onnxruntime). Recent files hold a
small JSON link (``*.lemodel``, kept in the app's data folder) that reopens the same pair and
data. A bad pair or bad data: one dialog (the task's one error line), and the app goes on.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import QDialog, QProgressBar, QPushButton

from .jobs.open_model import OpenedModel, open_model_task
from .state.external import LINK_SUFFIX, ModelRequest, ModelSession, link_name
from .tasks import Task, TaskStatus


class ModelOpener(QObject):
    """Opens models in tasks and puts them beside the runs of ``window`` (the main window).

    Signals: ``opened(object)`` a new :class:`ModelSession`; ``failed(str)`` the line shown."""

    opened = Signal(object)
    failed = Signal(str)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.last_request: ModelRequest | None = None
        self._open: Task | None = None
        self._request: ModelRequest | None = None
        self._pending: ModelSession | None = None  # to show when the explorer comes on screen
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(200)
        self.progress.setFormat("opening model %p%")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop opening the model")
        self.cancel_button.clicked.connect(self.cancel)
        bar = window.statusBar()
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self.progress.hide()
        self.cancel_button.hide()

    # ------------------------------------------------------------------ opening
    @property
    def links_folder(self) -> str:
        """Where the Recent files' model links are kept: beside the runs folder."""
        return os.path.join(os.path.dirname(self.window.controller.runs_folder), "models")

    @property
    def busy(self) -> bool:
        return self._open is not None

    def open_dialog(self) -> None:
        dialog = _dialog(self.window, self.last_request)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.open(dialog.request())

    def open(self, request: ModelRequest) -> bool:
        """Open ``request`` in a task; False when nothing was started."""
        for s in self.window.runs.sessions():
            if isinstance(s, ModelSession) and s.request.key() == request.key():
                self.window.runs.set_current(s)
                self.window.add_recent_file(self._write_link(request))
                return True
        if self._open is not None:
            self.window.show_error("a model is being opened already: wait for it or cancel it")
            return False
        self.last_request = self._request = request
        task = Task("open-model", open_model_task, request)
        task.progress.connect(self._on_progress)
        task.result.connect(self._on_opened)
        task.error.connect(self._on_failed)
        task.finished.connect(self._on_open_done)
        self._open = task
        task.start()
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self.window.statusBar().showMessage(f"Opening {request.title} …", 8000)
        return True

    def open_link(self, path: str) -> bool:
        """A recent ``.lemodel`` link: reopen its pair and data (the file handler)."""
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read(65536)
            request = ModelRequest.from_json(text, path)
        except (OSError, ValueError) as exc:
            from .dialogs import error_line

            self.window.show_error(str(exc) if isinstance(exc, ValueError) else error_line(exc))
            return False
        return self.open(request)

    def cancel(self) -> None:
        if self._open is not None:
            self._open.cancel()

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self.sender() is self._open:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)

    @Slot(object)
    def _on_opened(self, opened: OpenedModel) -> None:
        if self.sender() is not self._open:
            return
        session = ModelSession(opened.request, opened.model, opened.decoder)
        self.window.runs.add(session)
        session.show_first(opened.diagnosis, opened.description)
        self.show_in_explorer(session, opened)
        self.window.add_recent_file(self._write_link(opened.request))
        self.window.statusBar().showMessage(
            f"Opened {opened.request.title}: {opened.description}; Diagnose now for the IWAE bound",
            10000)
        self.opened.emit(session)

    @Slot(str)
    def _on_failed(self, line: str) -> None:
        if self.sender() is self._open:
            self.failed.emit(line)
            self.window.show_error(line)

    @Slot(object)
    def _on_open_done(self, status: TaskStatus) -> None:
        if self.sender() is not self._open:
            return
        if status is TaskStatus.CANCELLED:
            self.window.statusBar().showMessage("Opening the model cancelled", 8000)
        self._open = self._request = None
        self.progress.hide()
        self.cancel_button.hide()

    def _write_link(self, request: ModelRequest) -> str | None:
        """The request's JSON link for Recent files (None when it cannot be written)."""
        from models.io.atomic import replace_from, write_temp_beside

        path = os.path.join(self.links_folder, link_name(request))
        try:
            os.makedirs(self.links_folder, exist_ok=True)
            replace_from(write_temp_beside(path, request.to_json().encode("utf-8")), path)
        except OSError:
            return None
        return path

    # ------------------------------------------------------------------ the latent explorer
    def show_in_explorer(self, session: ModelSession, opened: OpenedModel | None = None) -> None:
        """Put the model's decoder and encoded rows on the latent explorer's map, once the
        explorer is on screen (as the explorer does for runs: nothing is laid out unseen)."""
        panel = getattr(self.window, "latent_panel", None)
        if panel is None or getattr(panel.space, "decoder", None) is session.decoder:
            return
        if not panel.on_screen:
            self._pending = session
            return
        self._pending = None
        m = session.model
        name = os.path.basename(session.request.encoder or session.request.decoder or "")
        space = panel.show_decoder(session.decoder, session.decoder.path,
                                   f"Model {name}: {len(m.x):,} rows encoded")
        panel.source_label.setToolTip(f"{session.request.title}: {m.source}")
        space.set_encodings(m.mu, m.logvar, labels=m.labels,
                            label_names=m.dataset.label_names if m.labels is not None else None,
                            samples=m.x)

    @Slot(object)
    def current_changed(self, session: Any) -> None:
        self._pending = None
        if isinstance(session, ModelSession):
            self.show_in_explorer(session)

    @Slot(bool)
    def explorer_visible(self, visible: bool) -> None:
        pending = self._pending
        if visible and pending is not None and pending is self.window.runs.current:
            self.show_in_explorer(pending)

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        if self._open is not None:
            self._open.cancel()
            self._open.wait(timeout_ms)


def _dialog(window: Any, previous: ModelRequest | None):
    from .open_model_dialog import OpenModelDialog

    start = os.path.dirname(previous.encoder or previous.decoder or "") if previous else ""
    recent = window.recent_files()
    return OpenModelDialog(window, start or (os.path.dirname(recent[0]) if recent else ""), previous)


def install(window: Any) -> ModelOpener:
    """File > Open model… (the table's ``open_model``), ``.lemodel`` links in Recent files,
    the latent explorer following it (Diagnose now is the controller's, for runs and models)."""
    opener = ModelOpener(window)
    window.act_open_model.triggered.connect(opener.open_dialog)
    window.add_file_handler((LINK_SUFFIX,), opener.open_link)
    window.runs.currentChanged.connect(opener.current_changed)
    dock = getattr(getattr(window, "latent_panel", None), "dock", None)
    if dock is not None:
        dock.visibilityChanged.connect(opener.explorer_visible)
    return opener
