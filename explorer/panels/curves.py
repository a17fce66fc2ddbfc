"""Learning curves: ELBO, distortion D and rate R against the training step, per sample in nats.

Each run draws a thin line for its logged training minibatches and dots for its per-epoch
validation values, in the run's colour. The three plots share the step axis. Long histories are
drawn with peak downsampling and clipped to the visible range.

Each plot's y range follows the settled part of the runs (the last 80% of each history, trimmed
of outliers, and the validation points), so the first steps' transient does not flatten the
curves; it stays drawn (zoom out to see it). A zoom or pan with the mouse leaves the view to the
user; the "A" button brings the settled range back.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..state import RunSession, RunsModel
from .axes import live_axes, style_plot
from .common import (
    EMPTY_HINT,
    EmptyHint,
    PlotPanel,
    SettledRange,
    brush,
    finite_xy,
    pen,
    settled_range,
)
from .refresh import RefreshThrottle

#: The empty panel's message (in the middle plot; the others are simply blank).
EMPTY_TEXT = EMPTY_HINT
#: (key in the plots dict, train column, validation column, title, y label)
CURVES = (
    ("elbo", "elbo", "val_elbo", "ELBO (higher is better)", "ELBO"),
    ("distortion", "distortion", "val_distortion", "Distortion D = −E log p(x|z)", "D"),
    ("rate", "rate", "val_rate", "Rate R = KL(q(z|x) ‖ p(z))", "R"),
)


class _RunCurves:
    def __init__(self, plots: dict[str, pg.PlotItem], session: RunSession) -> None:
        self.session = session
        self.train: dict[str, pg.PlotDataItem] = {}
        self.val: dict[str, pg.PlotDataItem] = {}
        for key, _t, _v, _title, _y in CURVES:
            # Dense lines without antialiasing: it halves their software paint time.
            train = pg.PlotDataItem(pen=pen(session.colour, 1.0, alpha=160), antialias=False)
            train.setDownsampling(auto=True, method="peak")
            train.setClipToView(True)
            val = pg.PlotDataItem(
                pen=pen(session.colour, 1.2, style=Qt.PenStyle.DashLine), symbol="o", symbolSize=7,
                symbolBrush=brush(session.colour), symbolPen=pg.mkPen("w", width=1),
            )
            plots[key].addItem(train)
            plots[key].addItem(val)
            self.train[key], self.val[key] = train, val

    def update(self, key: str) -> None:
        s = self.session
        tcol, vcol = next((t, v) for k, t, v, _title, _y in CURVES if k == key)
        self.train[key].setData(*finite_xy(s.steps["step"], s.steps[tcol]))
        vstep = s.epochs["step"]
        if len(vstep):
            self.val[key].setData(*finite_xy(vstep, s.epochs[vcol]))
        else:
            self.val[key].setData([], [])

    def remove(self, plots: dict[str, pg.PlotItem]) -> None:
        for key in plots:
            plots[key].removeItem(self.train[key])
            plots[key].removeItem(self.val[key])


class CurvesPanel(PlotPanel):
    """ELBO, D and R against step for every run of a :class:`RunsModel`."""

    plot_title = "curves"

    def __init__(self, runs: RunsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.view = pg.GraphicsLayoutWidget()
        self.view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.plots: dict[str, pg.PlotItem] = {}
        for row, (key, _t, _v, title, ylabel) in enumerate(CURVES):
            plot = self.view.addPlot(row=row, col=0, axisItems=live_axes())
            style_plot(plot, title, "step" if row == len(CURVES) - 1 else "", ylabel,
                       None, "nats")
            if row < len(CURVES) - 1:
                plot.getAxis("bottom").setStyle(showValues=False)
                plot.getAxis("bottom").setLabel("")
            if row:
                plot.setXLink(self.plots["elbo"])
            self.plots[key] = plot
        self.key = QLabel("thin line: training minibatches (logged steps)   ● validation, per epoch   "
                          "colours: runs, as in the rate–distortion legend")
        self.key.setWordWrap(True)
        self.key.setStyleSheet("color: #444; font-size: 9pt;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.key)

        self._items: dict[int, _RunCurves] = {}
        self.empty_hints = {key: EmptyHint(plot, "" if key != "distortion" else EMPTY_TEXT)
                            for key, plot in self.plots.items()}
        self.y_ranges = {key: SettledRange(plot, "y", lambda k=key: self._settled(k), parent=self)
                         for key, plot in self.plots.items()}
        # The steps axis, shared by the three plots, leaves room ahead of a live run: it moves
        # when the run fills it, not with every new step (each move rebuilt all six axes).
        first, *others = self.plots.values()
        self.x_range = SettledRange(first, "x", self._steps_extent, padding=0.0, parent=self,
                                    headroom=0.25)
        for plot in others:
            self.x_range.follow(plot)
        # One throttle per plot: the scheduler then redraws one plot per event-loop turn, and
        # only that plot is repainted (all three when the shared steps axis moved).
        self._steps_moved = {key: False for key, *_rest in CURVES}
        self._throttles = {key: RefreshThrottle(lambda k=key: self._redraw(k), parent=self,
                                                view=self.view,
                                                region=lambda k=key: self._changed_rect(k))
                           for key, *_rest in CURVES}
        runs.sessionAdded.connect(self._add_session)
        runs.sessionRemoved.connect(self._remove_session)
        for session in runs.sessions():
            self._add_session(session)

    def _add_session(self, session: RunSession) -> None:
        self._items[id(session)] = _RunCurves(self.plots, session)
        session.stepsAppended.connect(self._mark_dirty)
        session.epochsAppended.connect(self._mark_dirty)
        session.cleared.connect(self._mark_dirty)
        self._mark_dirty()

    def _mark_dirty(self, *_args) -> None:
        for throttle in self._throttles.values():
            throttle.mark_dirty()

    def _remove_session(self, session: RunSession) -> None:
        items = self._items.pop(id(session), None)
        if items is not None:
            for sig in (session.stepsAppended, session.epochsAppended, session.cleared):
                try:
                    sig.disconnect(self._mark_dirty)
                except (RuntimeError, TypeError):
                    pass
            items.remove(self.plots)

    def run_items(self, session: RunSession) -> _RunCurves:
        return self._items[id(session)]

    def flush(self) -> None:
        for throttle in self._throttles.values():
            throttle.flush()

    def export_item(self):
        return self.view.ci

    def _settled(self, key: str) -> tuple[float, float] | None:
        tcol, vcol = next((t, v) for k, t, v, _title, _y in CURVES if k == key)
        sessions = [items.session for items in self._items.values()]
        return settled_range([s.steps[tcol] for s in sessions if len(s.steps)],
                             extra=[s.epochs[vcol] for s in sessions if len(s.epochs)])

    def _steps_extent(self) -> tuple[float, float] | None:
        """The first and last step that any run has logged, or None."""
        steps = [table["step"] for items in self._items.values()
                 for table in (items.session.steps, items.session.epochs) if len(table)]
        if not steps:
            return None
        lo, hi = min(float(s[0]) for s in steps), max(float(s[-1]) for s in steps)
        return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)

    def _redraw(self, key: str) -> None:
        for items in self._items.values():
            items.update(key)
        empty = not any(len(items.session.steps) or len(items.session.epochs)
                        for items in self._items.values())
        self.empty_hints[key].set_empty(empty)
        self._steps_moved[key] = self.x_range.update()
        self.y_ranges[key].update()

    def _changed_rect(self, key: str):
        """What the last redraw of ``key`` changed: its plot, or every plot (None) when the
        shared steps axis moved."""
        return None if self._steps_moved[key] else self.plots[key].sceneBoundingRect()
