"""The latent explorer's dock: where its decoder and data come from.

A :class:`LatentExplorerPanel` shows a :class:`~explorer.latent.widget.LatentExplorerWidget` for
the decoder it has, and gets that decoder in one of two ways:

- **Decoder only**: :meth:`open_decoder` opens a shared ``.onnx`` decoder with
  ``models.io.onnx_runtime.OnnxDecoder`` (ours with metadata, or any float [N, d] decoder). The map shows
  draws from the prior. Nothing on this path imports torch.
- **A run**: :meth:`load_run` (called for the app's current run once it has finished and the
  explorer is on screen, or by *Load from run*) exports the run's decoder to a temporary ONNX
  file and encodes the run's data in a task (:func:`~explorer.latent.encoding.load_run_task`,
  run by :class:`explorer.tasks.Task`), with progress and Cancel. The explorer appears as soon as the decoder is written and fills its map when the
  encodings arrive.

Errors are one line: ``error(str)`` for those the user asked for (the app shows a dialog),
the panel's status line for automatic loads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from models.errors import LatentExplorerError

from ..tasks import Task, TaskStatus
from ..widgets import BusyOverlay
from .cache import RunCache
from .encoding import DecoderReady, Encodings, load_run_task, temp_decoder_path
from .model import LatentSpace
from .widget import LatentExplorerWidget

PLACEHOLDER = (
    "<h3>Latent explorer</h3>"
    "<p>Train a run, or open one (File &gt; Open run…): when it has finished, its decoder is "
    "exported to ONNX and its validation data are encoded onto the map here.</p>"
    "<p>Or open a decoder someone shared (File &gt; Open ONNX decoder…): the map then shows draws "
    "from the prior, and anchors, interpolations and traversals work the same.</p>"
)


class LatentExplorerPanel(QWidget):
    """The explorer's dock content: a header (source, progress, actions) and the explorer.

    Parameters
    ----------
    runs
        The app's ``RunsModel``; the panel follows its current run (optional).

    Signals
    -------
    error(str) : a problem with something the user asked for (shown in a dialog by the app)
    message(str) : a status-bar message
    explorerChanged(object) : a new :class:`LatentExplorerWidget` (or None)
    encodingsReady() : a run's data are on the map
    """

    error = Signal(str)
    message = Signal(str)
    explorerChanged = Signal(object)
    encodingsReady = Signal()

    def __init__(self, runs: Any = None, parent: QWidget | None = None, *,
                 cache: RunCache | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.cache = cache if cache is not None else RunCache(default_cache_folder())
        self._pinned = False  # a decoder the user opened: no automatic load replaces it
        self.space: LatentSpace | None = None
        self.explorer: LatentExplorerWidget | None = None
        self.decoder_path: str | None = None
        self.run_path: str | None = None  # the run shown (or being loaded)
        self._session: Any = None
        self._task: Task | None = None  # the load in progress (not a cancelled one)
        self._tasks: set[Task] = set()  # every load still running, cancelled ones too
        self._loaded_key: tuple | None = None
        self._on_screen: bool | None = None
        self._tmp = tempfile.mkdtemp(prefix="latent-explorer-")

        self.source_label = QLabel("No decoder")
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long line (an error naming a file) must not widen the dock, and the window with it.
        self.source_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("encoding %v / %m")
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.which = QComboBox()
        self.which.addItem("Validation rows", "validation")
        self.which.addItem("All rows", "all")
        self.which.setToolTip("Which rows of the run's data set are encoded onto the map")
        self.load_button = QPushButton("Load from run")
        self.load_button.setToolTip("Export the current run's decoder and encode its data now")
        self.open_button = QPushButton("Open ONNX decoder…")
        header = QHBoxLayout()
        header.setContentsMargins(4, 2, 4, 2)
        header.addWidget(self.source_label, 1)
        header.addWidget(self.progress)
        header.addWidget(self.cancel_button)
        header.addWidget(self.which)
        header.addWidget(self.load_button)
        header.addWidget(self.open_button)

        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setMargin(24)
        self.stack = QStackedLayout()
        self.stack.addWidget(self.placeholder)
        self.body = QWidget()
        self.body.setLayout(self.stack)
        self.overlay = BusyOverlay(self.body)  # over the previous map while the next loads
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.body, 1)

        self.cancel_button.clicked.connect(self.cancel)
        self.load_button.clicked.connect(self._load_current_clicked)
        self.open_button.clicked.connect(self.open_decoder_dialog)
        if runs is not None:
            runs.currentChanged.connect(self.set_session)
            self.set_session(runs.current)
        self._update_buttons()

    # ------------------------------------------------------------------ decoders
    def open_decoder(self, path: str) -> bool:
        """Open a shared ONNX decoder (torch-free) and explore the prior. False on a bad file."""
        from models.io.onnx_runtime import OnnxDecoder

        try:
            decoder = OnnxDecoder(path)
        except LatentExplorerError as exc:
            self.error.emit(str(exc))
            return False
        self.cancel()
        self.run_path = None
        self._loaded_key = None
        self._pinned = True  # stays until the user picks a run or loads one
        self.set_decoder(decoder, os.path.abspath(path))
        name = decoder.metadata.get("dataset")
        self.source_label.setText(
            f"Decoder {os.path.basename(path)}"
            + (f" (trained on {name})" if name else " (no metadata)" if not decoder.metadata else "")
            + ": the map shows the prior"
        )
        self.message.emit(f"Opened decoder {os.path.basename(path)}")
        return True

    def open_decoder_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open ONNX decoder", "", "ONNX models (*.onnx);;All files (*)"
        )
        if path:
            self.open_decoder(path)

    def show_decoder(self, decoder: Any, path: str | None, text: str) -> LatentSpace:
        """Explore a decoder object another part of the app gives (an opened ONNX pair:
        ``explorer.open_model``), instead of the run shown; returns its space for encodings."""
        self.cancel()
        self.run_path = None
        self._loaded_key = None
        self.set_decoder(decoder, path)
        self.source_label.setText(text)
        return self.space

    def set_decoder(self, decoder: Any, path: str | None = None) -> LatentExplorerWidget:
        """Explore ``decoder`` (replacing what was shown); returns the new explorer."""
        old = self.explorer
        self.space = LatentSpace(decoder)
        self.explorer = LatentExplorerWidget(self.space)
        self.explorer.error.connect(self.error.emit)
        self.decoder_path = path
        self.stack.addWidget(self.explorer)
        self.stack.setCurrentWidget(self.explorer)
        if old is not None:
            self.stack.removeWidget(old)
            old.deleteLater()
        self.explorerChanged.emit(self.explorer)
        return self.explorer

    # ------------------------------------------------------------------ runs
    def set_session(self, session: Any) -> None:
        """Follow the app's current run: load it once it has weights and is not training.

        Another run picked (or started) ends what an opened decoder pinned."""
        if session is not self._session:
            self._pinned = False
        if self._session is not None:
            try:
                self._session.statusChanged.disconnect(self._session_status_changed)
            except (RuntimeError, TypeError):
                pass
        self._session = session
        if session is not None:
            session.statusChanged.connect(self._session_status_changed)
        self._update_buttons()
        self._maybe_load()

    def _session_status_changed(self, _status: str) -> None:
        self._update_buttons()
        self._maybe_load()

    def _maybe_load(self) -> None:
        """Load the followed run if it is done training, once the explorer is on screen: nothing
        is exported or encoded for a run nobody looks at (the dock in a hidden tab)."""
        s = self._session
        if s is None or not getattr(s, "path", None) or s.is_live or not self.on_screen:
            return
        if s.status.bad or not os.path.exists(s.path):
            return
        self.load_run(s.path, user=False)

    def _load_current_clicked(self) -> None:
        s = self._session
        if s is None or not getattr(s, "path", None):
            self.error.emit("no run to load: train a run or open a run file first")
            return
        self.load_run(s.path, user=True, force=True)

    def load_run(self, run_path: str, *, which: str | None = None, user: bool = True,
                 force: bool = False) -> bool:
        """Export ``run_path``'s decoder and encode its data in the background.

        Skips a run already shown with the same weights unless ``force``. Returns False when
        nothing was started.
        """
        which = which or self.which.currentData()
        if self._pinned and not user:
            return False  # the user's decoder stays
        self._pinned = False
        try:
            stat = os.stat(run_path)
        except OSError as exc:
            message = f"{run_path}: {exc.strerror or 'cannot read'}"
            self.error.emit(message) if user else self.source_label.setText(message)
            return False
        key = (os.path.abspath(run_path), stat.st_mtime_ns, which)
        if not force and key == self._loaded_key:
            return False
        self.cancel()
        self._loaded_key = key
        self.run_path = os.path.abspath(run_path)
        self._user_load = user
        decoder_path = temp_decoder_path(self._tmp, run_path)
        task = Task("latent-explorer-load", load_run_task, run_path, decoder_path, which,
                    self.cache)
        task.partial.connect(self._on_partial)
        task.progress.connect(self._on_progress)
        task.result.connect(self._on_encoded)
        task.error.connect(self._on_failed)
        task.cancelled.connect(self._on_cancelled)
        task.finished.connect(self._on_task_finished)
        self._task = task
        self._tasks.add(task)
        task.start()
        self.source_label.setText(f"Loading {os.path.basename(run_path)}…")
        if self.explorer is not None:
            self.overlay.cover(f"Loading {os.path.basename(run_path)}…\n"
                               "(the map shown is the previous one)")
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.show()
        self._update_buttons()
        return True

    @Slot(object)
    def _on_task_finished(self, _status: TaskStatus) -> None:
        task = self.sender()
        self._tasks = {t for t in self._tasks if not t.status.done}
        if task is self._task:
            self._task = None
            self.overlay.hide()
            self.progress.hide()
            self.cancel_button.hide()
        self._update_buttons()

    @property
    def busy(self) -> bool:
        return self._task is not None

    def cancel(self) -> None:
        """Stop the export/encoding in progress (it ends between batches)."""
        if self._task is not None:
            self._task.cancel()  # its late signals are ignored: see _current()
            self._task = None
            self._loaded_key = None
        self.overlay.hide()
        self.progress.hide()
        self.cancel_button.hide()
        self._update_buttons()

    def _current(self) -> bool:
        """True in a slot called by the task of the load in progress (not a cancelled one)."""
        return self._task is not None and self.sender() is self._task

    @Slot(object)
    def _on_partial(self, ready: DecoderReady) -> None:
        from models.io.onnx_runtime import OnnxDecoder

        if not self._current():
            return
        path = ready.path
        try:
            decoder = OnnxDecoder(path)
        except LatentExplorerError as exc:
            self._on_failed(str(exc))
            return
        self.set_decoder(decoder, path)
        self.overlay.cover("Encoding the data…")
        self.source_label.setText(f"Run {os.path.basename(self.run_path or path)}: encoding its data…")

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if not self._current():
            return
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    @Slot(object)
    def _on_encoded(self, enc: Encodings) -> None:
        if not self._current() or self.space is None:
            return
        self.space.set_encodings(
            enc.means,
            enc.logvar,
            labels=enc.labels,
            label_names=enc.label_names,
            samples=enc.samples,
        )
        self.overlay.hide()
        self.source_label.setText(
            f"Run {os.path.basename(self.run_path or '')}: {enc.description}"
            + (" (from the cache)" if enc.extra.get("cached") else "")
        )
        self.message.emit(f"Latent explorer: encoded {enc.description}")
        self.encodingsReady.emit()

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._current():
            return
        self._loaded_key = None
        self.source_label.setText(message)
        if getattr(self, "_user_load", True):
            self.error.emit(message)

    @Slot()
    def _on_cancelled(self) -> None:
        if not self._current():
            return
        self.source_label.setText("Loading cancelled")

    def _update_buttons(self) -> None:
        s = self._session
        has_run = s is not None and bool(getattr(s, "path", None))
        self.load_button.setEnabled(has_run)
        self.which.setEnabled(not self.busy)

    @property
    def on_screen(self) -> bool:
        """Whether the explorer can be seen: its dock's tab is selected (see :meth:`set_on_screen`),
        or, outside a dock, the panel is visible."""
        return self.isVisible() if self._on_screen is None else self._on_screen

    def set_on_screen(self, visible: bool) -> None:
        """Told by the dock (``QDockWidget.visibilityChanged``): a tabbed dock stays "visible" to
        Qt while another tab covers it."""
        self._on_screen = bool(visible)
        if visible:
            self._maybe_load()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._maybe_load()

    # ------------------------------------------------------------------ lifetime
    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Cancel background work and wait for its threads (call before the window closes).

        Encoding stops between batches and an export's child process is interrupted. A task
        still running after ``timeout_ms`` stays referenced by ``explorer.tasks`` (destroying
        a running QThread aborts the process) and ends on its own.
        """
        self.cancel()
        for task in list(self._tasks):
            task.cancel()
            task.wait(timeout_ms)
        self._tasks.clear()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)


def default_cache_folder() -> str:
    """Where exported decoders and encodings are kept: the user's cache folder."""
    from PySide6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    return os.path.join(base or tempfile.gettempdir(), "latent-explorer", "runs")
