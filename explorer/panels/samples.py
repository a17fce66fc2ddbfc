"""The Samples dock: what the current run's model produces, while it trains.

Fixed validation images over their reconstructions, and decoded draws from the prior, from the
run file's latest saved weights (:func:`explorer.jobs.samples.samples_task`, in a task: the GUI
thread never loads a model). Refreshed after each epoch of the current run and on demand
(Refresh); an epoch that arrives while one refresh runs asks for one more after it, never a pile.
Nothing is exported.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStackedLayout, QVBoxLayout, QWidget

from models.latent.geometry import tile

from ..jobs.samples import SampleImages, samples_task
from ..latent.image_plot import ImagePlot
from ..tasks import Task, TaskStatus

HINT = ("<p>Train a run or open one: reconstructions of fixed validation images and samples "
        "from the prior appear here after each epoch.</p>")


class SamplesPanel(QWidget):
    """Reconstructions and prior samples of the runs model's current run, kept up to date."""

    def __init__(self, runs: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self._session: Any = None
        self._task: Task | None = None
        self._again = False  # an epoch arrived during the refresh in progress
        self.shown: SampleImages | None = None

        self.status = QLabel("No run")
        self.status.setWordWrap(True)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Decode the run's latest saved weights now")
        header = QHBoxLayout()
        header.setContentsMargins(4, 2, 4, 2)
        header.addWidget(self.status, 1)
        header.addWidget(self.refresh_button)

        self.recon_view = ImagePlot("Validation images and their reconstructions", axes=True)
        self.recon_view.set_title(["Validation images and their reconstructions",
                                   "Data and reconstructions", "Reconstructions"])
        self.recon_view.plot.showAxis("bottom", False)  # rows are named on the left
        self.prior_view = ImagePlot("Samples from the prior (fixed draws)")
        self.prior_view.set_title(["Samples from the prior (fixed draws)",
                                   "Samples from the prior", "Prior samples"])
        views = QWidget()
        row = QHBoxLayout(views)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.recon_view, 1)
        row.addWidget(self.prior_view, 1)
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedLayout()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(views)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addLayout(self.stack, 1)

        self._on_screen = True  # a panel on its own; the Samples dock says when it is hidden
        self._stale = False
        self.refresh_button.clicked.connect(self.refresh)
        runs.currentChanged.connect(self.set_session)
        self.set_session(runs.current)

    # ------------------------------------------------------------------ the run followed
    def set_session(self, session: Any) -> None:
        if self._session is not None:
            try:
                self._session.epochsAppended.disconnect(self._on_epochs)
            except (RuntimeError, TypeError):
                pass
        self._session = session
        self._cancel()
        self._stale = False
        self.shown = None
        self.stack.setCurrentWidget(self.hint)
        if session is not None:
            session.epochsAppended.connect(self._on_epochs)
            if len(session.epochs):
                self._on_epochs(len(session.epochs))
        self._update()

    def _on_epochs(self, _n: int) -> None:
        if self._on_screen:
            self.refresh()
        else:  # nobody looks: decoding would take the GIL from the GUI for nothing (and the
            self._stale = True  # first decode imports torch, a stall of ~0.5 s); when shown

    @Slot(bool)
    def set_on_screen(self, visible: bool) -> None:
        """The dock's tab shown or hidden: a hidden panel does not follow each epoch, and
        catches up when it comes back on screen."""
        self._on_screen = bool(visible)
        if self._on_screen and self._stale:
            self._stale = False
            self.refresh()

    def refresh(self) -> bool:
        """Decode the current run's latest weights in the background; False with nothing to do."""
        s = self._session
        path = getattr(s, "path", None)
        if s is None or not path or not os.path.exists(path):
            self._update()
            return False
        if self._task is not None:
            self._again = True
            return True
        task = Task("samples", samples_task, path)
        task.result.connect(self._on_result)
        task.error.connect(self._on_error)
        task.finished.connect(self._on_finished)
        self._task = task
        task.start()
        self._update()
        return True

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._again = False

    @property
    def busy(self) -> bool:
        return self._task is not None

    # ------------------------------------------------------------------ results
    @Slot(object)
    def _on_result(self, images: SampleImages) -> None:
        if self.sender() is not self._task:
            return  # a refresh of a run no longer current
        self.shown = images
        self._show(images)

    @Slot(str)
    def _on_error(self, message: str) -> None:
        if self.sender() is self._task:
            self.status.setText(message)  # e.g. no weights saved yet: the next epoch will try

    @Slot(object)
    def _on_finished(self, _status: TaskStatus) -> None:
        if self.sender() is not self._task:
            return
        self._task = None
        if self._again:
            self._again = False
            self.refresh()
        self._update()

    def _show(self, images: SampleImages) -> None:
        n = len(images.originals)
        pair = np.concatenate([images.originals, images.reconstructions])
        self.recon_view.set_image(tile(pair, 2, n, pad=1, fill=255))
        h = images.originals.shape[1]
        self.recon_view.set_ticks("left", [(h / 2, "data"), (h + 1 + h / 2, "recon.")])
        m = len(images.prior)
        cols = int(np.ceil(m / 2))
        self.prior_view.set_image(tile(images.prior, 2, cols, pad=1, fill=255))
        self.stack.setCurrentIndex(1)
        self._update()

    def _update(self) -> None:
        s = self._session
        self.refresh_button.setEnabled(s is not None and bool(getattr(s, "path", None)))
        if s is None:
            self.status.setText("No run")
        elif self.shown is not None:
            busy = " · updating…" if self.busy else ""
            self.status.setText(f"{s.name}: weights of step {self.shown.weights_step:,} · "
                                f"{self.shown.description}{busy}")
        elif self.busy:
            self.status.setText(f"{s.name}: decoding its latest weights…")

    def install(self, window: Any) -> Any:
        """Add this panel to ``window`` as the Samples dock, tabbed with the curves."""
        dock = window.add_dock(self, "Samples", Qt.DockWidgetArea.RightDockWidgetArea, "dock.samples")
        curves = getattr(window, "curves_dock", None)
        if curves is not None:
            window.tabifyDockWidget(curves, dock)
            curves.raise_()
        dock.visibilityChanged.connect(self.set_on_screen)
        self.set_on_screen(False)  # behind the curves until the user picks its tab
        return dock

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Cancel a refresh in progress and wait for its thread (before the window closes)."""
        task = self._task
        self._cancel()
        if task is not None:
            task.wait(timeout_ms)
