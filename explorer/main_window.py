"""The main window: assembles the panels as docks, with menus, toolbar, status bar and shortcuts.

It holds no computation: actions call the :class:`~explorer.controller.RunController`, panels
subscribe to the :class:`~explorer.session.RunsModel`. It also persists the window (geometry,
dock layout), the training form and the recent files with ``QSettings``.

Extension API (used by the latent-space explorer; see docs/gui.md):

- ``add_dock(widget, title, area=Qt.RightDockWidgetArea, object_name=None) -> QDockWidget``
- menus ``file_menu``, ``run_menu``, ``view_menu``, ``tools_menu``, ``help_menu``; ``toolbar``
- ``runs`` (the RunsModel), ``controller``, ``current_session()`` and the signal
  ``currentSessionChanged(object)`` (a RunSession or None)
- ``add_file_handler(suffixes, handler)``: open other file types (e.g. ``.onnx``) from
  File > Open..., drag and drop, the command line and the recent files
- ``show_error(message)``: the app's one error dialog
"""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QToolBar,
    QWidget,
)

from . import dialogs
from .controller import RunController
from .panels.common import PlotPanel, configure_pyqtgraph
from .panels.curves import CurvesPanel
from .panels.diagnosis import DiagnosisPanel
from .panels.kl_panel import KLPanel
from .panels.rd_plane import RateDistortionPanel
from .panels.training import TrainingPanel
from .state import RunSession, RunsModel, TrainingState

MAX_RECENT = 10
SETTINGS_VERSION = 1
RUN_SUFFIXES = (".h5", ".hdf5", ".he5")

SHORTCUTS = (
    ("New run", "Ctrl+N"),
    ("Open run…", "Ctrl+O"),
    ("Open data set…", "Ctrl+Shift+O"),
    ("Open ONNX decoder…", "Ctrl+Shift+D"),
    ("Export decoder to ONNX…", "Ctrl+E"),
    ("Save plot as image…", "Ctrl+S"),
    ("Quit", "Ctrl+Q"),
    ("Start training", "F5"),
    ("Pause / resume", "F6"),
    ("Stop", "Shift+F5"),
    ("Diagnose now", "F7"),
    ("Close run", "Ctrl+W"),
    ("Previous / next run", "Ctrl+PgUp / Ctrl+PgDown"),
    ("Remove the current anchor (latent explorer)", "Delete"),
    ("Add an anchor (latent explorer)", "double-click on the map"),
    ("Keyboard shortcuts", "F1"),
)


def runs_folder() -> str:
    """Where new runs are written: ``<AppDataLocation>/runs``."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return os.path.join(base or os.path.expanduser("~/.latent-explorer"), "runs")


def classify_file(path: str) -> str:
    """``"run"``, ``"data"`` or ``"other"``: how to open a file.

    A Latent Explorer run file (also one being written, opened for SWMR reading) is a run; an
    HDF5 file without the run marker is a data set; anything else (not HDF5, unreadable, a
    folder) is "other", which :meth:`MainWindow.open_path` hands to the run reader so the user
    gets its one-line explanation.
    """
    import h5py

    from models.runfile import FORMAT_NAME

    try:
        if not os.path.isfile(path) or not h5py.is_hdf5(path):
            return "other"
    except OSError:
        return "other"
    for kwargs in ({"libver": "latest", "swmr": True}, {}):
        try:
            with h5py.File(path, "r", **kwargs) as f:
                fmt = f.attrs.get("format", b"")
        except (OSError, ValueError):
            continue
        if isinstance(fmt, bytes):
            fmt = fmt.decode("utf-8", "replace")
        return "run" if str(fmt) == FORMAT_NAME else "data"
    return "other"


class MainWindow(QMainWindow):
    """Docks: Training, Rate–distortion, Curves, KL per dimension, Diagnosis."""

    currentSessionChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, settings: QSettings | None = None,
                 torch_threads: int | None = None) -> None:
        super().__init__(parent)
        configure_pyqtgraph()
        self.setWindowTitle("Latent Explorer")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.settings = settings if settings is not None else QSettings()
        self._file_handlers: list[tuple[tuple[str, ...], Callable[[str], None]]] = []
        self._active_plot: PlotPanel | None = None
        self._restored_state = None
        self._sized = False

        self.runs = RunsModel(self)
        self.controller = RunController(self.runs, runs_folder(), self, torch_threads=torch_threads)

        # --- panels
        self.training_panel = TrainingPanel()
        self.rd_panel = RateDistortionPanel(self.runs)
        self.curves_panel = CurvesPanel(self.runs)
        self.kl_panel = KLPanel(self.runs)
        self.diagnosis_panel = DiagnosisPanel(self.runs)
        self._active_plot = self.rd_panel

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_docks()
        self._build_status_bar()
        self._connect()
        self._restore_settings()
        self._update_actions()

    # ================================================================== assembly
    def _action(self, text: str, slot: Callable, shortcut: str | QKeySequence | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})" if shortcut else tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_new = a("&New run", self.new_run, "Ctrl+N", "Set up a new training run")
        self.act_open = a("&Open run…", self.open_run_dialog, "Ctrl+O", "Open a run file")
        self.act_open_data = a("Open &data set…", self.open_dataset_dialog, "Ctrl+Shift+O",
                               "Use an HDF5 file as training data")
        self.act_export = a("&Export decoder to ONNX…", self.export_dialog, "Ctrl+E",
                            "Export the current run's decoder for sharing")
        self.act_save_plot = a("&Save plot as image…", self.save_plot_dialog, "Ctrl+S",
                               "Save the selected plot as a PNG image")
        self.act_quit = a("&Quit", self.close, "Ctrl+Q", "Quit Latent Explorer")
        self.act_start = a("&Start", self.training_panel._start_clicked, "F5", "Start training")
        self.act_pause = a("&Pause / resume", self.controller.toggle_pause, "F6",
                           "Pause or resume training")
        self.act_stop = a("S&top", self.controller.stop, "Shift+F5", "Stop training")
        self.act_diagnose = a("&Diagnose now", self.diagnose_now, "F7",
                              "Full diagnosis of the current run, with the ELBO gap")
        self.act_close_run = a("&Close run", self.close_current_run, "Ctrl+W",
                               "Remove the current run from the plots")
        self.act_use_config = a("&Use settings of this run", self.use_current_config, None,
                                "Copy the current run's settings into the training form")
        self.act_prev_run = a("Previous run", lambda: self._step_run(-1), "Ctrl+PgUp")
        self.act_next_run = a("Next run", lambda: self._step_run(1), "Ctrl+PgDown")
        self.act_reset_layout = a("&Reset layout", self.reset_layout, None, "Restore the default dock layout")
        self.act_runs_folder = a("Open the &runs folder", self.open_runs_folder, None,
                                 "Show the folder where new runs are written")
        self.act_shortcuts = a("&Keyboard shortcuts", self.show_shortcuts, "F1")
        self.act_about = a("&About", self.show_about)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        self.file_menu.addAction(self.act_new)
        self.file_menu.addAction(self.act_open)
        self.file_menu.addAction(self.act_open_data)
        self.recent_menu = self.file_menu.addMenu("Recent &files")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.act_export)
        self.file_menu.addAction(self.act_save_plot)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.act_quit)

        self.run_menu = bar.addMenu("&Run")
        for act in (self.act_start, self.act_pause, self.act_stop):
            self.run_menu.addAction(act)
        self.run_menu.addSeparator()
        self.run_menu.addAction(self.act_diagnose)
        self.run_menu.addSeparator()
        for act in (self.act_use_config, self.act_prev_run, self.act_next_run, self.act_close_run):
            self.run_menu.addAction(act)

        self.view_menu = bar.addMenu("&View")
        self.tools_menu = bar.addMenu("&Tools")
        self.tools_menu.addAction(self.act_runs_folder)
        self.help_menu = bar.addMenu("&Help")
        self.help_menu.addAction(self.act_shortcuts)
        self.help_menu.addAction(self.act_about)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main toolbar")
        tb.setObjectName("toolbar.main")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        for act in (self.act_open, None, self.act_start, self.act_pause, self.act_stop, None,
                    self.act_diagnose, self.act_save_plot):
            if act is None:
                tb.addSeparator()
            else:
                tb.addAction(act)
        tb.addSeparator()
        tb.addWidget(QLabel(" Current run: "))
        self.run_combo = QComboBox()
        self.run_combo.setMinimumContentsLength(18)
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.run_combo.setToolTip("The run followed by the KL, diagnosis and explorer panels")
        tb.addWidget(self.run_combo)
        self.toolbar = tb

    def add_dock(self, widget: QWidget, title: str,
                 area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                 object_name: str | None = None) -> QDockWidget:
        """Add ``widget`` as a dock titled ``title``, with a toggle in the View menu.

        ``object_name`` (default: derived from the title) keys the dock in the saved layout; keep
        it stable across versions. A dock added after the window was restored gets its saved
        place back too.
        """
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name or "dock." + "".join(c for c in title.lower() if c.isalnum()))
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        if getattr(self, "_restored_state", None) is not None:
            self.restoreDockWidget(dock)
        return dock

    def _build_docks(self) -> None:
        L, R, B = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                   Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCentralWidget(None)
        self.training_dock = self.add_dock(self.training_panel, "Training", L, "dock.training")
        self.rd_dock = self.add_dock(self.rd_panel, "Rate–distortion plane", R, "dock.rd")
        self.curves_dock = self.add_dock(self.curves_panel, "Curves", R, "dock.curves")
        self.kl_dock = self.add_dock(self.kl_panel, "KL per dimension", B, "dock.kl")
        self.diagnosis_dock = self.add_dock(self.diagnosis_panel, "Diagnosis", B, "dock.diagnosis")
        self._default_layout()
        from .latent.panel import install as install_latent_explorer  # its dock, menu, .onnx files

        self.latent_panel = install_latent_explorer(self)  # tabbed with the rate-distortion plane
        self.view_menu.addSeparator()
        self.view_menu.addAction(self.act_reset_layout)
        self._default_state = self.saveState(SETTINGS_VERSION)

    def _default_layout(self) -> None:
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.splitDockWidget(self.rd_dock, self.curves_dock, Qt.Orientation.Horizontal)
        self.splitDockWidget(self.kl_dock, self.diagnosis_dock, Qt.Orientation.Horizontal)

    def _apply_default_sizes(self) -> None:
        """Dock sizes of the default layout, for the window's current size."""
        w, h = max(self.width(), 800), max(self.height(), 600)
        rest = w - 320
        H, V = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        self.resizeDocks([self.training_dock], [320], H)
        self.resizeDocks([self.rd_dock, self.curves_dock], [int(rest * 0.55), int(rest * 0.45)], H)
        self.resizeDocks([self.kl_dock, self.diagnosis_dock], [int(rest * 0.62), int(rest * 0.38)], H)
        self.resizeDocks([self.rd_dock, self.kl_dock], [int(h * 0.52), int(h * 0.48)], V)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            if self._restored_state is None:
                self._apply_default_sizes()
                # On X11 the window gets its final size after the show event: size again then.
                QTimer.singleShot(0, self._apply_default_sizes)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.run_file_label = QLabel("")
        self.run_file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state_label = QLabel(TrainingState.IDLE)
        sb.addPermanentWidget(self.run_file_label, 1)
        sb.addPermanentWidget(self.state_label)
        sb.showMessage("Ready: press Start (F5) to train on MNIST, or open a run (Ctrl+O).")

    def _connect(self) -> None:
        tp, c = self.training_panel, self.controller
        tp.startRequested.connect(self.start_training)
        tp.pauseRequested.connect(c.pause)
        tp.resumeRequested.connect(c.resume)
        tp.stopRequested.connect(c.stop)
        c.stateChanged.connect(self._state_changed)
        c.error.connect(self.show_error)
        c.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        c.runStarted.connect(lambda s: self.add_recent_file(s.path))
        c.diagnoseBusyChanged.connect(self.diagnosis_panel.set_busy)
        c.exportBusyChanged.connect(lambda _busy: self._update_actions())
        self.diagnosis_panel.diagnoseRequested.connect(c.diagnose)
        self.runs.currentChanged.connect(self._current_changed)
        self.runs.sessionAdded.connect(self._sessions_changed)
        self.runs.sessionRemoved.connect(self._sessions_changed)
        self.run_combo.currentIndexChanged.connect(self._combo_changed)
        app = QApplication.instance()
        if app is not None:
            app.focusChanged.connect(self._focus_changed)

    # ================================================================== extension API
    def current_session(self) -> RunSession | None:
        return self.runs.current

    def add_file_handler(self, suffixes: tuple[str, ...] | list[str],
                         handler: Callable[[str], object]) -> None:
        """Open files ending in one of ``suffixes`` (e.g. ``(".onnx",)``) with ``handler(path)``.

        Used by File > Open run… (their types are added to the dialog), drag and drop, paths on
        the command line and the recent files. Handlers report problems through
        :meth:`show_error` themselves and return False when the file could not be opened (it
        then stays out of the recent files). A later registration for the same suffix wins.
        """
        self._file_handlers.append((tuple(s.lower() for s in suffixes), handler))

    def show_error(self, message: str) -> None:
        """One dialog with one clear message (``explorer.dialogs.show_error``)."""
        self.statusBar().showMessage(str(message).splitlines()[0] if message else "", 10000)
        dialogs.show_error(self, message)

    # ================================================================== file actions
    def open_path(self, path: str) -> bool:
        """Open a file by type: a run file, an HDF5 data set, or a registered type."""
        path = os.path.abspath(os.path.expanduser(path))
        lower = path.lower()
        for suffixes, handler in reversed(self._file_handlers):  # the latest registration wins
            if lower.endswith(suffixes):
                if handler(path) is False:
                    return False
                self.add_recent_file(path)
                return True
        if not os.path.exists(path):
            self.show_error(f"{path}: no such file")
            return False
        if classify_file(path) == "data":
            return self.open_dataset(path)
        return self.open_run(path)

    def open_run(self, path: str) -> bool:
        session = self.controller.open_run(path)
        if session is None:
            return False
        self.add_recent_file(path)
        return True

    def open_dataset(self, path: str) -> bool:
        ok = self.training_panel.set_data_file(path)
        if ok:
            self.training_dock.show()
            self.training_dock.raise_()
            self.add_recent_file(path)
            self.statusBar().showMessage(f"Data set: {path}", 8000)
        return ok

    def _start_dir(self) -> str:
        recent = self.recent_files()
        return os.path.dirname(recent[0]) if recent else runs_folder()

    def open_run_dialog(self) -> None:
        filters = ["Run files (*.h5 *.hdf5)"]
        for suffixes, _h in self._file_handlers:
            filters.append(" ".join(f"*{s}" for s in suffixes).join(("Other (", ")")))
        filters.append("All files (*)")
        path, _ = QFileDialog.getOpenFileName(self, "Open run", self._start_dir(), ";;".join(filters))
        if path:
            self.open_path(path)

    def open_dataset_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open data set", self._start_dir(),
                                              "HDF5 files (*.h5 *.hdf5 *.he5);;All files (*)")
        if path:
            self.open_dataset(path)

    def export_dialog(self) -> None:
        session = self.runs.current
        if session is None or not session.path:
            self.show_error("no run to export: train or open a run first")
            return
        base = os.path.splitext(session.path)[0] + "-decoder.onnx"
        path, _ = QFileDialog.getSaveFileName(self, "Export decoder to ONNX", base,
                                              "ONNX models (*.onnx)")
        if path:
            if not path.lower().endswith(".onnx"):
                path += ".onnx"
            self.controller.export_decoder(path, session)

    def save_plot_dialog(self) -> None:
        panel = self._active_plot or self.rd_panel
        default = os.path.join(self._start_dir(), f"{panel.plot_title}.png")
        path, _ = QFileDialog.getSaveFileName(self, f"Save plot as image ({panel.plot_title})",
                                              default, "PNG images (*.png);;JPEG images (*.jpg)")
        if path:
            self.save_plot(path, panel)

    def save_plot(self, path: str, panel: PlotPanel | None = None) -> bool:
        from models.errors import LatentExplorerError

        panel = panel or self._active_plot or self.rd_panel
        if not os.path.splitext(path)[1]:
            path += ".png"
        try:
            panel.save_image(path)
        except LatentExplorerError as exc:
            self.show_error(str(exc))
            return False
        self.statusBar().showMessage(f"Saved {path}", 8000)
        return True

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        w = new
        while w is not None:
            if isinstance(w, PlotPanel):
                self._active_plot = w
                return
            w = w.parentWidget()

    # ================================================================== run actions
    def open_runs_folder(self) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        folder = self.controller.runs_folder
        os.makedirs(folder, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def new_run(self) -> None:
        self.training_dock.show()
        self.training_dock.raise_()
        self.training_panel.data_combo.setFocus()
        self.statusBar().showMessage("Choose the settings, then press Start (F5).", 8000)

    def start_training(self, config, path: str = "") -> RunSession | None:
        return self.controller.start_training(config, path)

    def diagnose_now(self) -> None:
        self.diagnosis_panel._request()

    def close_current_run(self) -> None:
        s = self.runs.current
        if s is None:
            return
        if s is self.controller.training_session and self.controller.is_training:
            self.show_error(f"{s.name} is training: stop it before closing it")
            return
        self.runs.remove(s)

    def use_current_config(self) -> None:
        s = self.runs.current
        if s is not None and s.config is not None:
            self.training_panel.set_config(s.config)
            self.new_run()

    def _step_run(self, delta: int) -> None:
        sessions = self.runs.sessions()
        if not sessions:
            return
        cur = self.runs.current
        i = sessions.index(cur) if cur in sessions else 0
        self.runs.set_current(sessions[(i + delta) % len(sessions)])

    # ================================================================== reactions
    def _state_changed(self, state: str) -> None:
        self.training_panel.set_state(state)
        self.state_label.setText(state)
        self._update_actions()

    def _update_actions(self) -> None:
        state = self.controller.state
        self.act_start.setEnabled(state is TrainingState.IDLE)
        self.act_pause.setEnabled(state in (TrainingState.RUNNING, TrainingState.PAUSED))
        self.act_stop.setEnabled(state.stoppable)
        has_run = self.runs.current is not None
        self.act_export.setEnabled(has_run and not self.controller.export_busy)
        self.act_diagnose.setEnabled(has_run)
        self.act_close_run.setEnabled(has_run)
        self.act_use_config.setEnabled(has_run)

    def _current_changed(self, session: RunSession | None) -> None:
        if session is self.controller.training_session or session is None:
            self.training_panel.set_session(self.controller.training_session)
        else:
            self.training_panel.set_session(session)
        self._sync_combo()
        self.run_file_label.setText(f"Run file: {session.path}" if session and session.path else "")
        self._update_actions()
        self.currentSessionChanged.emit(session)

    def _sessions_changed(self, _session: RunSession) -> None:
        self._sync_combo()
        self._update_actions()

    def _sync_combo(self) -> None:
        self.run_combo.blockSignals(True)
        try:
            self.run_combo.clear()
            for s in self.runs.sessions():
                self.run_combo.addItem(s.label, s)
            cur = self.runs.current
            if cur in self.runs.sessions():
                self.run_combo.setCurrentIndex(self.runs.sessions().index(cur))
        finally:
            self.run_combo.blockSignals(False)

    def _combo_changed(self, index: int) -> None:
        if index >= 0:
            session = self.run_combo.itemData(index)
            if session is not None:
                self.runs.set_current(session)

    # ================================================================== recent files
    def recent_files(self) -> list[str]:
        value = self.settings.value("recent/files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent_file(self, path: str | None) -> None:
        if not path:
            return
        path = os.path.abspath(path)
        files = [p for p in self.recent_files() if p != path]
        files.insert(0, path)
        self.settings.setValue("recent/files", files[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.recent_files()
        if not files:
            empty = self.recent_menu.addAction("(none)")
            empty.setEnabled(False)
            return
        for i, path in enumerate(files):
            act = self.recent_menu.addAction(f"&{i + 1} {os.path.basename(path)}")
            act.setToolTip(path)
            act.setStatusTip(path)
            act.setData(path)
            act.triggered.connect(self._open_recent)
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear list", lambda: self.settings.setValue("recent/files", []))

    def _open_recent(self) -> None:
        act = self.sender()
        if isinstance(act, QAction) and act.data():
            self.open_path(str(act.data()))

    # ================================================================== settings
    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            if self.restoreState(state, SETTINGS_VERSION):
                self._restored_state = state
        self.training_panel.restore_settings(s)

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(SETTINGS_VERSION))
        self.training_panel.save_settings(s)
        s.sync()

    def reset_layout(self) -> None:
        for dock in self.findChildren(QDockWidget):
            dock.setFloating(False)
            dock.show()
        self.restoreState(self._default_state, SETTINGS_VERSION)
        self._apply_default_sizes()

    # ================================================================== help
    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{name}</td><td><b>{keys}</b></td></tr>" for name, keys in SHORTCUTS)
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts",
                          f"<table cellspacing='6'>{rows}</table>", QMessageBox.StandardButton.Ok, self)
        box.exec()

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Latent Explorer",
            "Latent Explorer: train, diagnose and explore variational autoencoders.<br>"
            "Every figure is per data sample, in nats.")

    # ================================================================== drag and drop, close
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        for path in paths:
            self.open_path(path)

    def closeEvent(self, event) -> None:
        if self.controller.is_training:
            self.statusBar().showMessage("Stopping training and closing the run file …")
            QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
            try:
                self.controller.shutdown()
            finally:
                QApplication.restoreOverrideCursor()
        else:
            self.controller.shutdown()
        self.latent_panel.shutdown()
        self.save_settings()
        event.accept()
