"""The training dock: the form (:class:`~explorer.panels.training_form.TrainingForm`), Start,
Pause/Resume, Stop, and the progress of the run it follows.

The panel only collects settings and shows progress: ``startRequested(RunConfig, run_path)`` asks
the controller to start a run (``run_path`` is ``""`` for the default location), and the buttons
emit ``pauseRequested``, ``resumeRequested`` and ``stopRequested``.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QVBoxLayout, QWidget

from models.errors import ConfigError

from .. import dialogs
from ..actions import keys_text
from ..state import RunSession, RunStatus, TrainingState
from .common import StatusText
from .speed import SpeedEstimate
from .training_form import BUILTIN_DATA, TrainingForm, sample_shape_of

__all__ = ["BUILTIN_DATA", "TrainingPanel", "format_duration", "sample_shape_of"]


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingPanel(TrainingForm):
    """Settings of a new run and the controls of the running one."""

    startRequested = Signal(object, str)  # RunConfig, run file path ("" = default location)
    pauseRequested = Signal()
    resumeRequested = Signal()
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session: RunSession | None = None
        self._state = TrainingState.IDLE
        self._speed = SpeedEstimate()

        # --- controls and progress
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip(f"Start training ({keys_text('start')})")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip(f"Pause or resume ({keys_text('pause')})")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(
            f"Stop; the run file keeps everything so far ({keys_text('stop')})")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        # Fixed height (no jump when a run starts): progress, then the run's message, wrapped.
        self.progress_label = StatusText(lines=4)
        self.progress_label.setText("Ready.")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.form_area, 1)
        bottom = QVBoxLayout()
        bottom.setContentsMargins(6, 0, 6, 6)
        bottom.addLayout(buttons)
        bottom.addWidget(self.progress)
        bottom.addWidget(self.progress_label)
        layout.addLayout(bottom)

        self.start_button.clicked.connect(self.request_start)
        self.pause_button.clicked.connect(self._pause_clicked)
        self.stop_button.clicked.connect(self.stopRequested)
        self._tick = QTimer(self)  # refreshes "time left" while running
        self._tick.setInterval(500)
        self._tick.timeout.connect(self._update_progress)
        self.set_state(TrainingState.IDLE)

    # ------------------------------------------------------------------ buttons and state
    def request_start(self) -> None:
        """Ask for a run with the form's settings (Start); a bad setting: one dialog."""
        try:
            cfg = self.config()
        except ConfigError as exc:
            dialogs.show_error(self, str(exc))
            return
        self.startRequested.emit(cfg, self.out_edit.text().strip())

    def _pause_clicked(self) -> None:
        if self._state is TrainingState.PAUSED:
            self.resumeRequested.emit()
        else:
            self.pauseRequested.emit()

    def set_state(self, state: TrainingState) -> None:
        """The controller's :class:`~explorer.state.TrainingState`: enables the buttons."""
        state = TrainingState(state)
        self._state = state
        self.start_button.setEnabled(not state.busy)
        self.pause_button.setEnabled(state in (TrainingState.RUNNING, TrainingState.PAUSED))
        self.pause_button.setText("Resume" if state is TrainingState.PAUSED else "Pause")
        self.stop_button.setEnabled(state.stoppable)
        if state.stoppable:
            self._tick.start()
        else:
            self._tick.stop()
        self._update_progress()

    @property
    def state(self) -> TrainingState:
        return self._state

    # ------------------------------------------------------------------ progress
    def set_session(self, session: RunSession | None) -> None:
        """Follow the progress of ``session`` (the run being trained or watched)."""
        if self._session is not None:
            try:
                self._session.stepsAppended.disconnect(self._on_steps)
                self._session.statusChanged.disconnect(self._on_status)
            except (RuntimeError, TypeError):
                pass
        self._session = session
        if session is not None:
            session.stepsAppended.connect(self._on_steps)
            session.statusChanged.connect(self._on_status)
        self._update_progress()

    def _on_steps(self, _n: int) -> None:
        # Cheap: the label and bar are set at most every 500 ms by the tick, plus on each epoch.
        if not self._tick.isActive():
            self._update_progress()

    def _on_status(self, _status: str) -> None:
        self._update_progress()

    def progress_text(self) -> str:
        s = self._session
        if s is None:
            return "Ready."
        n = len(s.steps)
        if n == 0:
            if s.status is RunStatus.STARTING:
                return "Loading data and building the model…"
            return f"{s.name}: {s.status}"
        step = int(s.steps.last("step"))
        epoch = s.steps.last("epoch")
        total = s.total_steps
        epochs = s.epochs_planned
        if self._speed.key is not s:
            self._speed.reset(s)
        if s.status is RunStatus.PAUSED:
            self._speed.paused()
        sps = self._speed.update(s.steps.column("samples_per_s")) if "samples_per_s" in s.steps else None
        parts = []
        if epoch is not None and np.isfinite(epoch):
            parts.append(f"epoch {int(epoch)}" + (f"/{epochs}" if epochs else ""))
        parts.append(f"step {step:,}" + (f"/{total:,}" if total else ""))
        if s.status is RunStatus.PAUSED:
            parts.append("paused")  # no speed and no time left while nothing moves
        elif sps is not None:
            parts.append(f"{sps:,.0f} samples/s")
            if total and s.status is RunStatus.RUNNING and s.config is not None:
                seconds = self._speed.seconds_left(total - step, s.config.train.batch_size)
                parts.append(f"{format_duration(seconds)} left")
        # Named: the form above may already hold the next run's settings.
        text = f"{s.name}: " + " · ".join(parts)
        if s.status not in (RunStatus.RUNNING, RunStatus.PAUSED):
            text += f"\n{s.message or s.status}"  # its own lines, wrapped: a killed run explains
        return text

    def _update_progress(self) -> None:
        s = self._session
        text = self.progress_text()
        self.progress_label.setText(text)
        self.progress_label.setToolTip(text)
        if s is None or not s.total_steps or len(s.steps) == 0:
            self.progress.setValue(1000 if s is not None and s.status is RunStatus.FINISHED else 0)
            self.progress.setFormat("")
            return
        step = float(s.steps.last("step"))
        frac = 1.0 if s.status is RunStatus.FINISHED else min(1.0, max(0.0, step / s.total_steps))
        self.progress.setValue(int(round(frac * 1000)))
        self.progress.setFormat(f"{frac * 100:.0f} %")
