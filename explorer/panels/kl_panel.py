"""KL per latent dimension: which dimensions carry information, and when the others collapsed.

Top: a bar per latent dimension of the current run, live. "KL" shows the minibatch-mean
``KL(q(z_i|x) || N(0, 1))`` of the latest logged step; "activity" shows ``A_i = Var_x(E_q[z_i])``
of the latest validation pass. Bars can be ordered by dimension index or sorted.

Collapse is judged as the diagnostics judge it (Burda et al. 2016): a dimension is *collapsed*
when its activity is at most 0.01 (``models.diagnostics.ACTIVE_THRESHOLD``), using the latest
epoch's activity once one is known. Before the first epoch ends, and for the KL threshold line,
the bound ``KL_i >= A_i / 2`` is used: a dimension whose KL is under 0.005 nats is certainly
collapsed. Collapsed dimensions are drawn in grey, active ones in the run's colour.

Bottom: a heat map of the per-dimension KL over training (dimension x step), so the step at which
a dimension goes dark is visible.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from models.latent.stats import ACTIVE_THRESHOLD  # an active unit's activity (Burda et al. 2016)

from ..state import RunSession, RunsModel
from .axes import labels_that_fit, live_axes, log_ticks, style_plot
from .common import EmptyHint, PlotPanel, SettledRange, brush, pen
from .refresh import RefreshThrottle

#: KL below this many nats implies activity below ACTIVE_THRESHOLD (KL_i >= A_i / 2).
KL_COLLAPSE_THRESHOLD = ACTIVE_THRESHOLD / 2
#: Floor of the log scale (nats or activity units); smaller values are drawn at the floor.
LOG_FLOOR = 1e-4
#: The heat map keeps at most this many columns; older steps are averaged in bins.
HEATMAP_COLUMNS = 800
COLLAPSED_COLOUR = "#9a9a9a"
#: The bar plot's title for each "Show" choice: the view is named for what it shows.
BAR_TITLES = {
    "kl": "KL per latent dimension (latest batch)",
    "activity": "Activity Var(E[z_i|x]) per latent dimension (latest epoch)",
}


class KLPanel(PlotPanel):
    """Per-dimension KL (or activity) bars and the KL heat map of the current run."""

    plot_title = "kl-per-dimension"

    def __init__(self, runs: RunsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.session: RunSession | None = None

        self.show_combo = QComboBox()
        self.show_combo.addItem("KL per dimension (nats, latest batch)", "kl")
        self.show_combo.addItem("activity Var(E[z_i|x]) (latest epoch)", "activity")
        self.order_combo = QComboBox()
        self.order_combo.addItem("by index", "index")
        self.order_combo.addItem("sorted, largest first", "sorted")
        for combo in (self.show_combo, self.order_combo):  # shrink with the dock, text elided
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        self.log_check = QCheckBox("log scale")
        self.log_check.setChecked(True)
        self.log_check.setToolTip("Log scale makes small values and the collapse threshold visible")
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Show"))
        controls.addWidget(self.show_combo)
        controls.addWidget(QLabel("order"))
        controls.addWidget(self.order_combo)
        controls.addWidget(self.log_check)
        controls.addStretch(1)

        self.summary = QLabel("No run yet.")
        self.summary.setStyleSheet("font-size: 9pt;")
        # Wraps instead of widening the dock: a long (timestamped) run name must not push the
        # panel over its neighbours. Ignored width: the label takes what the dock gives it.
        self.summary.setWordWrap(True)
        policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        policy.setHeightForWidth(True)
        self.summary.setSizePolicy(policy)

        self.view = pg.GraphicsLayoutWidget()
        self.view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.bar_plot: pg.PlotItem = self.view.addPlot(row=0, col=0, axisItems=live_axes())
        style_plot(self.bar_plot, BAR_TITLES["kl"], "latent dimension", "KL", None, "nats")
        self.bar_plot.setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, pen=None, brushes=[])
        self.bar_plot.addItem(self.bars)
        # Named in the summary line above the plot: a label in the plot covered bars.
        self.threshold = pg.InfiniteLine(
            pos=0, angle=0, movable=False, pen=pen("#C00000", 1.2, style=Qt.PenStyle.DashLine)
        )
        self.bar_plot.addItem(self.threshold, ignoreBounds=True)

        self.heat_plot: pg.PlotItem = self.view.addPlot(row=1, col=0, axisItems=live_axes())
        style_plot(self.heat_plot, "KL per dimension over training", "step", "latent dimension")
        self.heat = pg.ImageItem(axisOrder="col-major")
        self.heat_plot.addItem(self.heat)
        self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap="viridis", interactive=False,
                                          label="KL (nats)", width=14)
        self.colour_bar.setImageItem(self.heat, insert_in=self.heat_plot)
        self.colour_bar.axis.geometryChanged.connect(self._colour_ticks)  # fewer when shorter
        self.view.ci.layout.setRowStretchFactor(0, 1)
        self.view.ci.layout.setRowStretchFactor(1, 1)
        self.bar_hint = EmptyHint(self.bar_plot, others=[self.threshold])
        self.heat_hint = EmptyHint(self.heat_plot, "", others=[self.colour_bar.axis])
        self.colour_bar.axis.enableAutoSIPrefix(False)  # else its label is rebuilt at each new level
        # The steps axis leaves room ahead of a live run, as the curves' does: it moves when the
        # run fills it, not with every new column (each move rebuilt the axis and the image).
        self._heat_span: tuple[float, float] | None = None
        self.heat_x = SettledRange(self.heat_plot, "x", lambda: self._heat_span, padding=0.0,
                                   parent=self, headroom=0.25)
        self._heat_rows: int | None = None
        self._bar_title = BAR_TITLES["kl"]

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(controls)
        layout.addWidget(self.summary)
        layout.addWidget(self.view, 1)

        # What is drawn, for tests and look-ups.
        self.bar_values = np.zeros(0)
        self.bar_dims = np.zeros(0, dtype=int)
        self.collapsed = np.zeros(0, dtype=bool)
        self.heat_data = np.zeros((0, 0))
        self._layout_key: tuple | None = None
        self._y_top: float | None = None
        self._levels: tuple[float, float] | None = None
        self._heat_log: bool | None = None

        # Two throttles, the bars and the heat map: each is redrawn, and repainted, on its own
        # turn of the event loop (together they were the longest paint of the live plots).
        self._throttles = (
            RefreshThrottle(self._redraw, parent=self, view=self.view,
                            region=self.bar_plot.sceneBoundingRect),
            RefreshThrottle(self._redraw_heatmap, parent=self, view=self.view,
                            region=lambda: self.heat_plot.sceneBoundingRect().united(
                                self.colour_bar.sceneBoundingRect())),
        )
        for widget in (self.show_combo, self.order_combo):
            widget.currentIndexChanged.connect(self._settings_changed)
        self.log_check.toggled.connect(self._settings_changed)
        runs.currentChanged.connect(self.set_session)
        self.set_session(runs.current)

    # ------------------------------------------------------------------ session
    def set_session(self, session: RunSession | None) -> None:
        if self.session is not None:
            for sig in (self.session.stepsAppended, self.session.epochsAppended,
                        self.session.cleared):
                try:
                    sig.disconnect(self._mark_dirty)
                except (RuntimeError, TypeError):
                    pass
        self.session = session
        self._levels = self._y_top = None
        if session is not None:
            session.stepsAppended.connect(self._mark_dirty)
            session.epochsAppended.connect(self._mark_dirty)
            session.cleared.connect(self._mark_dirty)
        self._mark_dirty()

    def _mark_dirty(self, *_args) -> None:
        for throttle in self._throttles:
            throttle.mark_dirty()

    def _settings_changed(self, *_args) -> None:
        self._mark_dirty()  # both parts
        self.flush()

    @Slot()
    def _colour_ticks(self) -> None:
        """Our own colour-bar ticks in log mode (pyqtgraph's label every minor tick when the
        values span less than a decade), as many as the bar's height keeps apart."""
        if not (self._heat_log and self._levels):
            self.colour_bar.axis.setTicks(None)
            return
        height = self.colour_bar.axis.geometry().height()
        most = max(2, min(5, labels_that_fit(self.colour_bar.axis, height)))  # the axes' rule
        self.colour_bar.axis.setTicks([log_ticks(*self._levels, max_ticks=most)])

    def flush(self) -> None:
        for throttle in self._throttles:
            throttle.flush()

    def export_item(self):
        return self.view.ci

    # ------------------------------------------------------------------ drawing
    def _redraw(self) -> None:
        s = self.session
        log = self.log_check.isChecked()
        mode = self.show_combo.currentData()
        title = BAR_TITLES.get(mode, BAR_TITLES["kl"])
        if title != self._bar_title:
            self._bar_title = title
            self.bar_plot.setTitle(title, size="10pt")
        if s is None:
            self._clear("No run yet.")
            return
        kl_steps = s.steps["kl_per_dim"]
        activity_rows = s.epochs["activity_per_dim"]
        activity = _last_finite_row(activity_rows)
        kl_latest = _last_finite_row(kl_steps)
        values = activity if mode == "activity" else kl_latest
        if values is None:
            what = "activity is known after the first epoch" if mode == "activity" else "no step logged yet"
            self._clear(f"{s.name}: {what}.")
            return
        d = len(values)
        if activity is not None and len(activity) == d:
            collapsed = activity <= ACTIVE_THRESHOLD
            basis = "grey: activity ≤ 0.01 at the latest epoch"
        elif kl_latest is not None and len(kl_latest) == d:
            collapsed = kl_latest < KL_COLLAPSE_THRESHOLD
            basis = "grey: KL < 0.005 nats; no epoch finished yet"
        else:
            collapsed = np.zeros(d, dtype=bool)
            basis = ""
        dims = np.arange(d)
        if self.order_combo.currentData() == "sorted":
            dims = np.argsort(-values, kind="stable")
        shown = values[dims]
        self.bar_hint.set_empty(False)
        self.bar_values, self.bar_dims, self.collapsed = shown.copy(), dims, collapsed[dims]
        colours = [COLLAPSED_COLOUR if c else s.colour for c in self.collapsed]
        thr = ACTIVE_THRESHOLD if mode == "activity" else KL_COLLAPSE_THRESHOLD
        if log:
            heights = np.log10(np.maximum(shown, LOG_FLOOR))
            y0 = math.log10(LOG_FLOOR)
            self.bars.setOpts(x=np.arange(d), y0=y0, height=heights - y0, width=0.8,
                              brushes=[brush(c) for c in colours])
            self.threshold.setPos(math.log10(thr))
        else:
            self.bars.setOpts(x=np.arange(d), y0=0.0, height=shown, width=0.8,
                              brushes=[brush(c) for c in colours])
            self.threshold.setPos(thr)
        sorted_order = self.order_combo.currentData() == "sorted"
        key = (mode, log, sorted_order, tuple(int(k) for k in dims) if d <= 40 else d)
        if key != self._layout_key:  # axes, labels and ticks change rarely: set them only then
            self._layout_key = key
            self.bar_plot.setLabel("left", "KL" if mode == "kl" else "activity",
                                   units="nats" if mode == "kl" else None)
            axis = self.bar_plot.getAxis("bottom")
            axis.setTicks([[(i, str(int(k))) for i, k in enumerate(dims)]] if d <= 40 else None)
            axis.setLabel("latent dimension" + (" (sorted)" if sorted_order else ""))
            self.bar_plot.setXRange(-0.6, d - 0.4, padding=0)
            self._y_top = None
        if log:
            y0, top = math.log10(LOG_FLOOR), math.log10(max(float(np.max(shown)), thr, LOG_FLOOR * 10)) + 0.15
        else:
            y0, top = 0.0, max(float(np.max(shown)), thr) * 1.08
        # Rescale when the bars outgrow the view or shrink to well under it, not at every step.
        if self._y_top is None or top > self._y_top or (top - y0) < 0.6 * (self._y_top - y0):
            self._y_top = top
            self.bar_plot.setYRange(y0, top, padding=0)
            # Log scale: round values at our own ticks (pyqtgraph's log mode labels every minor
            # tick when the bars span less than a decade or two, and those labels overlap).
            self.bar_plot.getAxis("left").setTicks([log_ticks(y0, top)] if log else None)
        n_coll = int(collapsed.sum())
        text = (f"{s.name}: {d - n_coll} of {d} dimensions active, {n_coll} collapsed"
                + (f" ({basis})" if basis else "") + "; red dashed line: "
                + (f"activity {thr:g}" if mode == "activity" else f"KL {thr:g} nats") + ".")
        if text != self.summary.text():
            self.summary.setText(text)

    def _clear(self, text: str) -> None:
        self.bar_hint.set_empty(True)
        self.bars.setOpts(x=[], height=[], brushes=[])
        self.bar_values = np.zeros(0)
        self.bar_dims = np.zeros(0, dtype=int)
        self.collapsed = np.zeros(0, dtype=bool)
        self.summary.setText(text)

    def _redraw_heatmap(self) -> None:
        s = self.session
        if s is None:
            self.heat.clear()
            self.heat_data = np.zeros((0, 0))
            self.heat_hint.set_empty(True)
            return
        self._draw_heatmap(s, self.log_check.isChecked())

    def _draw_heatmap(self, s: RunSession, log: bool) -> None:
        kl = s.steps["kl_per_dim"]
        steps = s.steps["step"]
        if kl.ndim != 2 or len(kl) == 0:
            self.heat.clear()
            self.heat_data = np.zeros((0, 0))
            self.heat_hint.set_empty(True)
            return
        self.heat_hint.set_empty(False)
        n, d = kl.shape
        if n > HEATMAP_COLUMNS:
            k = math.ceil(n / HEATMAP_COLUMNS)
            m = n // k
            head = kl[: m * k].reshape(m, k, d)
            binned = np.nanmean(head, axis=1)
            if n > m * k:
                binned = np.vstack([binned, np.nanmean(kl[m * k:], axis=0, keepdims=True)])
        else:
            binned = np.array(kl)
        data = np.log10(np.maximum(binned, LOG_FLOOR)) if log else binned
        data = np.where(np.isfinite(data), data, np.nan)
        self.heat_data = binned
        self.heat.setImage(data, autoLevels=False)
        finite = data[np.isfinite(data)]
        if finite.size:
            lo = math.log10(LOG_FLOOR) if log else 0.0
            hi = max(float(np.percentile(finite, 99.5)), lo + 1e-6)
            old = self._levels
            if old is None or old[0] != lo or abs(hi - old[1]) > 0.05 * (old[1] - old[0]):
                self._levels = (lo, hi)
                self.colour_bar.setLevels((lo, hi))
                if log == self._heat_log:  # else just below
                    self._colour_ticks()
        if log != self._heat_log:
            self._heat_log = log
            self._colour_ticks()
            self.colour_bar.getAxis("left").setLabel("KL (nats, log scale)" if log else "KL (nats)")
        first = float(steps[0]) if np.isfinite(steps[0]) else 0.0
        last = float(steps[-1]) if np.isfinite(steps[-1]) else float(n)
        per_col = (last - first) / max(1, len(binned) - 1) if len(binned) > 1 else 1.0
        self.heat.setRect(QRectF(first - per_col / 2, -0.5, per_col * len(binned), d))
        self._heat_span = (first - per_col / 2, first - per_col / 2 + per_col * len(binned))
        self.heat_x.update()
        if d != self._heat_rows:  # one row per dimension, all of them in view
            self._heat_rows = d
            self.heat_plot.getViewBox().enableAutoRange(y=False)
            self.heat_plot.setYRange(-0.5, d - 0.5, padding=0)


def _last_finite_row(rows: np.ndarray) -> np.ndarray | None:
    """The last row of a [n, d] column with a finite value, or None."""
    if rows.ndim != 2 or len(rows) == 0:
        return None
    for i in range(len(rows) - 1, -1, -1):
        if np.isfinite(rows[i]).all():
            return np.array(rows[i])
    return None
