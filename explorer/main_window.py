"""The main window: assembles the panels as docks, with menus, toolbar, status bar and shortcuts.

It holds no computation: actions call the :class:`~explorer.controller.RunController`, panels
subscribe to the :class:`~explorer.state.RunsModel`. The actions, their keys and their places in
the menus and toolbar come from one table (:mod:`explorer.actions`); the file actions are in
:mod:`explorer.file_actions`; the settings (geometry, dock layout, the training form, recent
files) are written as they change by :class:`explorer.settings.SettingsKeeper`.

Extension API (used by the latent-space explorer; see docs/gui.md):

- ``add_dock(widget, title, area=Qt.RightDockWidgetArea, object_name=None) -> QDockWidget``
- menus ``file_menu``, ``run_menu``, ``view_menu``, ``tools_menu``, ``help_menu``; ``toolbar``;
  ``actions_by_key`` (the table's QActions, also ``act_<key>``)
- ``runs`` (the RunsModel), ``controller``, ``current_session()`` and the signal
  ``currentSessionChanged(object)`` (a RunSession or None)
- ``add_file_handler(suffixes, handler)``: open other file types (e.g. ``.onnx``) from
  File > Open..., drag and drop, the command line and the recent files
- ``show_error(message)``: the app's one error dialog
"""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QToolBar,
    QWidget,
)

from . import dialogs
from .actions import MENUS, TOOLBAR, build_actions, keys_text, shortcut_rows
from .controller import RunController
from .file_actions import RUN_SUFFIXES, FileActions, classify_file
from .panels.common import PlotPanel, configure_pyqtgraph
from .panels.curves import CurvesPanel
from .panels.diagnosis import DiagnosisPanel
from .panels.kl_panel import KLPanel
from .panels.rd_plane import RateDistortionPanel
from .panels.samples import SamplesPanel
from .panels.training import TrainingPanel
from .settings import SETTINGS_VERSION, SettingsKeeper, runs_folder
from .state import RunSession, RunsModel, TrainingState
from .widgets import ElidedLabel, scrolling

__all__ = ["RUN_SUFFIXES", "MainWindow", "classify_file", "runs_folder"]


class MainWindow(FileActions, QMainWindow):
    """Docks: Training, Rate–distortion, Curves, KL per dimension, Diagnosis, Latent explorer."""

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
        self.settings_keeper = SettingsKeeper(self, self.settings)
        self._file_handlers = []
        self._active_plot: PlotPanel | None = None
        self._sized = False
        self._quit_when_idle = False

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
        self.settings_keeper.restore()
        self._update_actions()

    # ================================================================== assembly
    def _build_actions(self) -> None:
        c = self.controller
        self.actions_by_key = build_actions(self, {
            "new": self.new_run, "open": self.open_run_dialog, "open_data": self.open_dataset_dialog,
            "export": self.export_dialog, "cancel_export": c.cancel_export,
            "save_plot": self.save_plot_dialog, "quit": self.close,
            "start": self.training_panel.request_start, "pause": c.toggle_pause, "stop": c.stop,
            "diagnose": self.diagnosis_panel.request, "cancel_diagnosis": c.cancel_diagnosis,
            "use_config": self.use_current_config, "close_run": self.close_current_run,
            "prev_run": lambda: self._step_run(-1), "next_run": lambda: self._step_run(1),
            "reset_layout": self.reset_layout, "runs_folder": self.open_runs_folder,
            "shortcuts": self.show_shortcuts, "about": self.show_about,
        })
        for key, action in self.actions_by_key.items():
            setattr(self, f"act_{key}", action)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        for name, title, items in MENUS:
            menu = bar.addMenu(title)
            setattr(self, f"{name}_menu", menu)
            for item in items:
                if item is None:
                    menu.addSeparator()
                elif item == "@recent":
                    self.recent_menu = menu.addMenu("Recent &files")
                    self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
                else:
                    menu.addAction(self.actions_by_key[item])
        self._view_toggles_before = self.view_menu.actions()[0]  # dock toggles go above it

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main toolbar")
        tb.setObjectName("toolbar.main")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        for key in TOOLBAR:
            if key is None:
                tb.addSeparator()
            else:
                tb.addAction(self.actions_by_key[key])
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
        place back too. Moving, floating or hiding it saves the layout.
        """
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name or "dock." + "".join(c for c in title.lower() if c.isalnum()))
        dock.content = widget
        dock.setWidget(scrolling(widget))  # smaller than its content: it scrolls, never cut
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.view_menu.insertAction(self._view_toggles_before, dock.toggleViewAction())
        if self.settings_keeper.restored_state is not None:
            self.restoreDockWidget(dock)
        self.settings_keeper.watch(dock.dockLocationChanged, dock.topLevelChanged,
                                   dock.visibilityChanged)
        return dock

    def _build_docks(self) -> None:
        L, R, B = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                   Qt.DockWidgetArea.BottomDockWidgetArea)
        self.setCentralWidget(None)
        self.training_dock = self.add_dock(self.training_panel, "Training", L, "dock.training")
        self.rd_dock = self.add_dock(self.rd_panel, "Rate–distortion plane", R, "dock.rd")
        self.curves_dock = self.add_dock(self.curves_panel, "Curves", R, "dock.curves")
        # Three stacked plots need this much height for tick labels that do not pile up; a
        # shorter dock scrolls (widgets.scrolling).
        self.curves_panel.setMinimumHeight(330)
        # The bars and the heat map under the controls and the summary: below this they were
        # 15 px each at 1280x720 and their labels overlapped; a shorter dock scrolls.
        self.kl_panel.setMinimumHeight(340)
        self.kl_dock = self.add_dock(self.kl_panel, "KL per dimension", B, "dock.kl")
        self.diagnosis_dock = self.add_dock(self.diagnosis_panel, "Diagnosis", B, "dock.diagnosis")
        self._default_layout()
        from .latent.dock import install as install_latent_explorer  # its dock, menu, .onnx files

        self.latent_panel = install_latent_explorer(self)  # tabbed with the rate-distortion plane
        from .open_model import install as install_open_model  # File > Open model… (ONNX pairs)

        self.model_opener = install_open_model(self)
        from .recover import RecoverOffer  # interrupted runs: Recover / Open as is

        self.recover_offer = RecoverOffer(self)
        self.samples_panel = SamplesPanel(self.runs)
        self.samples_dock = self.samples_panel.install(self)  # tabbed with the curves
        from .sweep_ui import install as install_sweeps  # runs table, sweeps, remedy runs

        self.sweeps = install_sweeps(self)
        self._default_state = self.saveState(SETTINGS_VERSION)

    def _default_layout(self) -> None:
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.TopLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.splitDockWidget(self.rd_dock, self.curves_dock, Qt.Orientation.Horizontal)
        self.splitDockWidget(self.kl_dock, self.diagnosis_dock, Qt.Orientation.Horizontal)

    def _apply_default_sizes(self) -> None:
        """Dock sizes of the default layout, for the window's current size."""
        w, h = max(self.width(), 800), max(self.height(), 600)
        left = 345  # the form's combos show "MNIST (built-in, 28×28)" whole
        rest = w - left
        H, V = Qt.Orientation.Horizontal, Qt.Orientation.Vertical
        self.resizeDocks([self.training_dock], [left], H)
        self.resizeDocks([self.rd_dock, self.curves_dock], [int(rest * 0.55), int(rest * 0.45)], H)
        self.resizeDocks([self.kl_dock, self.diagnosis_dock], [int(rest * 0.62), int(rest * 0.38)], H)
        self.resizeDocks([self.rd_dock, self.kl_dock], [int(h * 0.52), int(h * 0.48)], V)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().showEvent(event)
        if not self._sized:
            self._sized = True
            if self.settings_keeper.restored_state is None:
                self._apply_default_sizes()
                # On X11 the window gets its final size after the show event: size again then.
                QTimer.singleShot(0, self._apply_default_sizes)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().resizeEvent(event)
        self.settings_keeper.changed()

    def moveEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().moveEvent(event)
        self.settings_keeper.changed()

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        # Elided and capped: a temporary message is drawn in the room permanent widgets leave.
        self.run_file_label = ElidedLabel("", max_width=420)
        self.state_label = QLabel(TrainingState.IDLE)
        sb.addPermanentWidget(self.run_file_label)
        sb.addPermanentWidget(self.state_label)
        sb.showMessage(f"Ready: press Start ({keys_text('start')}) to train on MNIST, or open a run "
                       f"({keys_text('open')}).")

    def _connect(self) -> None:
        tp, c = self.training_panel, self.controller
        tp.startRequested.connect(self.start_training)
        tp.pauseRequested.connect(c.pause)
        tp.resumeRequested.connect(c.resume)
        tp.stopRequested.connect(c.stop)
        self.settings_keeper.watch(tp.settingsChanged)
        c.stateChanged.connect(self._state_changed)
        c.error.connect(self.show_error)
        c.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        c.runStarted.connect(lambda s: self.add_recent_file(s.path))
        c.diagnoseBusyChanged.connect(self.diagnosis_panel.set_busy)
        c.diagnoseBusyChanged.connect(lambda _busy: self._update_actions())
        c.exportBusyChanged.connect(lambda _busy: self._update_actions())
        self.diagnosis_panel.diagnoseRequested.connect(c.diagnose)
        self.diagnosis_panel.cancelRequested.connect(c.cancel_diagnosis)
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

    def show_error(self, message: str) -> None:
        """One dialog with one clear message (``explorer.dialogs.show_error``)."""
        self.statusBar().showMessage(dialogs.user_message(message)[0] if message else "", 10000)
        dialogs.show_error(self, message)

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
        self.statusBar().showMessage(f"Choose the settings, then press Start ({keys_text('start')}).",
                                     8000)

    def start_training(self, config, path: str = "") -> RunSession | None:
        return self.controller.start_training(config, path)

    def diagnose_now(self) -> None:
        self.diagnosis_panel.request()

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
    def _state_changed(self, state: TrainingState) -> None:
        self.training_panel.set_state(state)
        self.state_label.setText(state)
        self._update_actions()
        if state is TrainingState.IDLE and self._quit_when_idle:
            QTimer.singleShot(0, self.close)  # "Keep training" was chosen at quit

    def _update_actions(self) -> None:
        c = self.controller
        self.act_start.setEnabled(c.state is TrainingState.IDLE)
        self.act_pause.setEnabled(c.state in (TrainingState.RUNNING, TrainingState.PAUSED))
        self.act_stop.setEnabled(c.state.stoppable)
        has_run = self.runs.current is not None
        self.act_export.setEnabled(has_run and not c.export_busy)
        self.act_cancel_export.setEnabled(c.export_busy)
        self.act_diagnose.setEnabled(has_run and not c.diagnose_busy)
        self.act_cancel_diagnosis.setEnabled(c.diagnose_busy)
        self.act_close_run.setEnabled(has_run)
        self.act_use_config.setEnabled(has_run)

    def _current_changed(self, session: RunSession | None) -> None:
        if session is self.controller.training_session or session is None:
            self.training_panel.set_session(self.controller.training_session)
        else:
            self.training_panel.set_session(session)
        self._sync_combo()
        self.run_file_label.setFullText(f"Run file: {session.path}" if session and session.path else "")
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

    # ================================================================== settings
    def save_settings(self) -> None:
        """Write the window, its layout and the training form now (also done as they change)."""
        self.settings_keeper.save()

    def reset_layout(self) -> None:
        for dock in self.findChildren(QDockWidget):
            dock.setFloating(False)
            dock.show()
        self.restoreState(self._default_state, SETTINGS_VERSION)
        self._apply_default_sizes()

    # ================================================================== help
    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td>{name}</td><td><b>{keys}</b></td></tr>" for name, keys in shortcut_rows())
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts",
                          f"<table cellspacing='6'>{rows}</table>", QMessageBox.StandardButton.Ok, self)
        box.exec()

    def show_about(self) -> None:
        QMessageBox.about(
            self, "About Latent Explorer",
            "Latent Explorer: train, diagnose and explore variational autoencoders.<br>"
            "Every figure is per data sample, in nats.")

    # ================================================================== close
    def _ask_before_quit(self, event) -> bool:
        """Quit during a run: Stop and quit (True), Keep training (closes when it ends), Cancel."""
        session = self.controller.training_session
        choice = dialogs.ask_quit_while_training(self, session.name if session else "A run")
        if choice is dialogs.QuitChoice.STOP_AND_QUIT:
            return True
        event.ignore()
        if choice is dialogs.QuitChoice.KEEP_TRAINING:
            self._quit_when_idle = True
            self.statusBar().showMessage("Latent Explorer will quit when the run ends.")
        return False

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        if self.controller.is_training and not self._ask_before_quit(event):
            return
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
        self.model_opener.shutdown()
        self.recover_offer.shutdown()
        self.samples_panel.shutdown()
        self.sweeps.shutdown()
        self.save_settings()
        event.accept()
