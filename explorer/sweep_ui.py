"""Sweeps, the runs table and the remedy runs, installed into the main window.

:func:`install` (called once by the window, like the latent explorer's) adds the runs table
dock, connects Run > New sweep… / Stop sweep / Pause sweep and Run > Try a remedy (the actions of
:mod:`explorer.actions`), reopens the runs of the last launch (:class:`RunsMemory`) and returns
the :class:`SweepUI`, kept as ``window.sweeps``. A remedy run trains the current run's
configuration with one change (``models.diagnostics.remedies.apply_remedy``), from the same seed,
named after its parent and listed right below it in the table.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QDialog, QDockWidget, QMenu, QTabBar

from models.diagnostics.remedies import REMEDIES, apply_remedy
from models.errors import ConfigError

from .actions import make_action
from .jobs.sweep import SweepJob
from .panels.runs_table import RunsTablePanel
from .runs_memory import RunsMemory
from .state import RunSession
from .sweep_control import SweepController
from .sweep_dialog import SweepDialog


class SweepUI(QObject):
    """The window's sweep controller, runs table and remedy actions."""

    def __init__(self, window) -> None:  # noqa: ANN001
        super().__init__(window)
        self.window = window
        runs, c = window.runs, window.controller
        self.controller = SweepController(runs, c.open_run, self)
        self.table = RunsTablePanel(runs)
        self.dock = window.add_dock(self.table, "Runs", Qt.DockWidgetArea.BottomDockWidgetArea, "dock.runs")
        window.tabifyDockWidget(window.kl_dock, self.dock)  # a tab beside the KL panel
        window.kl_dock.raise_()
        self.memory = RunsMemory(runs, window.settings, self)
        self.last_dialog: SweepDialog | None = None

        sc = self.controller
        sc.error.connect(window.show_error)
        sc.message.connect(lambda text: window.statusBar().showMessage(text, 8000))
        sc.progress.connect(lambda done, total: window.statusBar().showMessage(
            f"Sweep: {done} of {total} runs done", 8000))
        sc.busyChanged.connect(lambda _b: self.update_actions())
        window.act_new_sweep.triggered.connect(self.new_sweep)
        window.act_stop_sweep.triggered.connect(sc.stop)
        window.act_pause_sweep.triggered.connect(sc.toggle_pause)
        self.remedy_menu = QMenu("Try a &remedy", window)
        self.remedy_actions = {}
        for key in REMEDIES:
            action = make_action(f"try_{key}", window, lambda _c=False, k=key: self.try_remedy(k))
            self.remedy_actions[key] = action
            self.remedy_menu.addAction(action)
        window.run_menu.insertMenu(window.act_use_config, self.remedy_menu)
        window.run_menu.insertSeparator(window.act_use_config)
        self.table.remedyMenuRequested.connect(self._fill_remedy_menu)
        runs.currentChanged.connect(lambda _s: self.update_actions())
        c.stateChanged.connect(lambda _s: self.update_actions())
        self.update_actions()
        self._tidy = QTimer(self, singleShot=True, interval=0)
        self._tidy.timeout.connect(lambda: hide_stale_tab_bars(window))
        window.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802, ANN001 (Qt)
        if event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest, QEvent.Type.Show):
            self._tidy.start()  # after Qt has laid the docks out again
        return False

    # ------------------------------------------------------------------ sweeps
    def new_sweep(self, *, exec_dialog: bool = True) -> SweepDialog | None:
        """Open the sweep dialog (the training form's settings as its base); start on OK."""
        try:
            base = self.window.training_panel.config()
        except ConfigError:
            base = None
        dialog = SweepDialog(self.window.controller.runs_folder, base, self.window)
        self.last_dialog = dialog
        if not exec_dialog:
            return dialog
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.start_sweep(dialog.job())
        return dialog

    def start_sweep(self, job: SweepJob) -> bool:
        self.dock.show()
        self.dock.raise_()
        return self.controller.start(job)

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        return self.controller.shutdown(timeout_ms)

    # ------------------------------------------------------------------ remedies
    def try_remedy(self, key: str, parent: RunSession | None = None) -> RunSession | None:
        """Train ``parent``'s configuration (default: the current run's) with remedy ``key``."""
        parent = parent or self.window.runs.current
        if parent is None or parent.config is None:
            self.window.show_error("no run to improve: train or open a run first")
            return None
        epochs = max(1, int(parent.config.train.epochs))
        steps_per_epoch = max(1, int(parent.total_steps or 0) // epochs)
        try:
            config = apply_remedy(parent.config, key, steps_per_epoch)
        except ConfigError as exc:
            self.window.show_error(str(exc))
            return None
        child = self.window.controller.start_training(config)
        if child is not None:
            child.parent_run = parent
            child.remedy = REMEDIES[key].change
            child.sweep, child.settings = None, {}
            child.rename(self.window.runs.unique_name(f"{parent.name} + {child.remedy}", child))
            self.table.model.reset()
        return child

    def _fill_remedy_menu(self, menu: QMenu, session: RunSession) -> None:
        for key, remedy in REMEDIES.items():
            action = menu.addAction(remedy.text, lambda k=key, s=session: self.try_remedy(k, s))
            action.setEnabled(session.config is not None and not self.window.controller.is_training)

    def update_actions(self) -> None:
        w, busy = self.window, self.controller.busy
        w.act_new_sweep.setEnabled(not busy)
        w.act_stop_sweep.setEnabled(busy)
        w.act_pause_sweep.setEnabled(busy)
        cur = w.runs.current
        can = cur is not None and cur.config is not None and not w.controller.is_training
        for action in self.remedy_actions.values():
            action.setEnabled(can)


def hide_stale_tab_bars(window) -> int:  # noqa: ANN001
    """Hide the dock tab bars Qt left behind (tabifying a dock across a split leaves an extra,
    visible QTabBar at an old place): a tab bar in use touches the dock of its current tab."""
    docks = {d.windowTitle(): d for d in window.findChildren(QDockWidget)}
    hidden = 0
    for bar in window.findChildren(QTabBar):
        if bar.parent() is not window or not bar.isVisible() or bar.currentIndex() < 0:
            continue
        dock = docks.get(bar.tabText(bar.currentIndex()))
        if dock is None or not dock.isVisible():
            continue
        g, b = dock.geometry(), bar.geometry()
        touches = abs(b.top() - g.bottom()) <= 8 or abs(b.bottom() - g.top()) <= 8
        if not (touches and abs(b.left() - g.left()) <= 8):
            bar.hide()
            hidden += 1
    return hidden


def install(window) -> SweepUI:  # noqa: ANN001
    """Add the sweeps, the runs table and the remedies to ``window``; reopen last launch's runs
    once the window is up."""
    ui = SweepUI(window)
    QTimer.singleShot(0, lambda: ui.memory.restore(window.controller.open_run))
    return ui
