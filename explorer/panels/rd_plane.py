"""The rate-distortion plane: where each run sits between compressing and reconstructing.

x is the rate R = KL(q(z|x) || p(z)), y the distortion D = -E_q[log p(x|z)], both per sample in
nats, so -ELBO = R + D. Shown per run:

- the training trajectory, one point per logged minibatch (thin line);
- the validation point of each epoch (dots joined by a dashed line);
- for the current run, the line of slope -beta through its latest point: the points of equal
  training objective D + beta R (beta in effect, warm-up included), along which the optimiser is
  indifferent;
- grey diagonals R + D = c: lines of equal ELBO, labelled with the ELBO.

Hovering shows the nearest point's step, R, D and ELBO. Runs overlay with a legend.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..session import RunSession, RunsModel
from .common import PlotPanel, RefreshThrottle, brush, finite_xy, nice_step, pen, style_plot

#: At most this many training points are drawn per run (evenly strided); the rest are skipped.
MAX_TRAJECTORY_POINTS = 4000
#: Number of iso-ELBO lines kept ready; those not needed are hidden.
ISO_LINES = 10
HOVER_RADIUS_PX = 12


class _RunItems:
    """The items that draw one run; created once, updated with setData."""

    def __init__(self, plot: pg.PlotItem, session: RunSession) -> None:
        colour = session.colour
        self.session = session
        self.train = pg.PlotDataItem(pen=pen(colour, 1.0, alpha=110), name=session.label)
        self.val = pg.PlotDataItem(
            pen=pen(colour, 1.2, style=Qt.PenStyle.DashLine),
            symbol="o",
            symbolSize=8,
            symbolBrush=brush(colour),
            symbolPen=pg.mkPen("w", width=1),
        )
        self.latest = pg.ScatterPlotItem(
            size=13, symbol="star", brush=brush(colour), pen=pg.mkPen("k", width=0.8)
        )
        for item in (self.train, self.val, self.latest):
            plot.addItem(item)
        self.items = (self.train, self.val, self.latest)
        # Data kept for hover look-ups: (R, D, step, kind) of what is drawn.
        self.points = np.empty((0, 2))
        self.meta: list[tuple[str, int, int]] = []

    def remove(self, plot: pg.PlotItem) -> None:
        for item in self.items:
            plot.removeItem(item)

    def update(self) -> None:
        s = self.session
        r, d = s.steps["rate"], s.steps["distortion"]
        steps = s.steps["step"]
        if len(r) > MAX_TRAJECTORY_POINTS:
            stride = math.ceil(len(r) / MAX_TRAJECTORY_POINTS)
            idx = np.r_[np.arange(0, len(r) - 1, stride), len(r) - 1]
        else:
            idx = np.arange(len(r))
        tr, td = r[idx], d[idx]
        ok = np.isfinite(tr) & np.isfinite(td)
        self.train.setData(tr[ok], td[ok])
        vr, vd = s.epochs["val_rate"], s.epochs["val_distortion"]
        vr, vd = finite_xy(vr, vd)
        self.val.setData(vr, vd)
        if len(tr) and ok[-1]:
            self.latest.setData([tr[-1]], [td[-1]])
        else:
            self.latest.setData([], [])
        # hover index
        t_steps = steps[idx][ok] if len(steps) else np.zeros(0)
        v_ok = np.isfinite(s.epochs["val_rate"]) & np.isfinite(s.epochs["val_distortion"])
        v_steps = s.epochs["step"][v_ok] if "step" in s.epochs else np.zeros(int(v_ok.sum()))
        v_epochs = s.epochs["epoch"][v_ok] if "epoch" in s.epochs else np.zeros(int(v_ok.sum()))
        self.points = np.concatenate(
            [np.column_stack([tr[ok], td[ok]]), np.column_stack([vr, vd])]
        ) if (ok.any() or len(vr)) else np.empty((0, 2))
        t_epochs = s.steps["epoch"][idx][ok] if "epoch" in s.steps else np.zeros(len(t_steps))
        self.meta = [("training batch", _int(a), _int(b)) for a, b in zip(t_steps, t_epochs)] + [
            ("validation", _int(a), _int(b)) for a, b in zip(v_steps, v_epochs)
        ]

    def relabel(self, legend: pg.LegendItem) -> None:
        legend.removeItem(self.train)
        legend.addItem(self.train, self.session.label)


def _int(v: float) -> int:
    return int(v) if np.isfinite(v) else -1


class RateDistortionPanel(PlotPanel):
    """Live (R, D) trajectories of every run in a :class:`RunsModel`."""

    plot_title = "rate-distortion"

    def __init__(self, runs: RunsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.plot: pg.PlotItem = self.plot_widget.getPlotItem()
        style_plot(self.plot, "Rate–distortion plane (per sample)", "rate R = KL(q(z|x) ‖ p(z))",
                   "distortion D = −E log p(x|z)", "nats", "nats")
        self.plot.getAxis("bottom").setLabel("rate R = KL(q(z|x) ‖ p(z))", units="nats")
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="9pt")
        self.legend.setBrush(brush("#ffffff", 200))

        grey = pen("#888888", 1.0, alpha=120, style=Qt.PenStyle.DotLine)
        self.iso_lines: list[pg.InfiniteLine] = []
        for _ in range(ISO_LINES):
            line = pg.InfiniteLine(
                pos=(0, 0), angle=-45, pen=grey, movable=False, label="",
                labelOpts={"position": 0.8, "color": "#777777", "rotateAxis": (1, 0),
                           "anchors": [(0.5, 1), (0.5, 1)]},
            )
            line.setZValue(-10)
            line.hide()
            self.plot.addItem(line, ignoreBounds=True)
            self.iso_lines.append(line)
        self.iso_values: list[float] = []

        self.beta_line = pg.InfiniteLine(
            pos=(0, 0), angle=0, movable=False, label="",
            labelOpts={"position": 0.3, "color": "#333333", "rotateAxis": (1, 0),
                       "anchors": [(0.5, 0), (0.5, 0)]},
        )
        self.beta_line.setZValue(-5)
        self.beta_line.hide()
        self.plot.addItem(self.beta_line, ignoreBounds=True)
        self.beta_value: float | None = None

        self.hover_marker = pg.ScatterPlotItem(size=14, symbol="o", brush=None,
                                               pen=pg.mkPen("k", width=2))
        self.hover_text = pg.TextItem("", color="#111111", fill=brush("#ffffff", 220),
                                      border=pen("#999999", 1.0), anchor=(0, 1))
        for item in (self.hover_marker, self.hover_text):
            item.setZValue(20)
            item.hide()
            self.plot.addItem(item, ignoreBounds=True)

        self.readout = QLabel(
            "line: training batches   ● validation, per epoch   ★ latest   "
            "dashed: slope −β (equal training objective D + βR)   dotted grey: equal ELBO = −(R + D)"
        )
        self.readout.setWordWrap(True)
        self.readout.setStyleSheet("color: #444; font-size: 9pt;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.readout)

        self._items: dict[int, _RunItems] = {}
        self._throttle = RefreshThrottle(self._redraw, parent=self)
        self._mouse_proxy = pg.SignalProxy(
            self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved
        )
        self.plot.getViewBox().sigRangeChanged.connect(self._update_iso_lines)

        runs.sessionAdded.connect(self._add_session)
        runs.sessionRemoved.connect(self._remove_session)
        runs.currentChanged.connect(lambda _s: self._throttle.mark_dirty())
        for session in runs.sessions():
            self._add_session(session)

    # ------------------------------------------------------------------ sessions
    def _add_session(self, session: RunSession) -> None:
        items = _RunItems(self.plot, session)
        self._items[id(session)] = items
        session.stepsAppended.connect(self._throttle.mark_dirty)
        session.epochsAppended.connect(self._throttle.mark_dirty)
        session.cleared.connect(self._throttle.mark_dirty)
        session.infoChanged.connect(lambda s=session: self._relabel(s))
        self._throttle.mark_dirty()

    def _remove_session(self, session: RunSession) -> None:
        items = self._items.pop(id(session), None)
        if items is None:
            return
        for sig in (session.stepsAppended, session.epochsAppended, session.cleared):
            try:
                sig.disconnect(self._throttle.mark_dirty)
            except (RuntimeError, TypeError):
                pass
        items.remove(self.plot)
        self._throttle.mark_dirty()

    def _relabel(self, session: RunSession) -> None:
        items = self._items.get(id(session))
        if items is not None:
            items.relabel(self.legend)

    def run_items(self, session: RunSession) -> _RunItems:
        """The items drawing ``session`` (tests compare their data with the run file)."""
        return self._items[id(session)]

    # ------------------------------------------------------------------ drawing
    def flush(self) -> None:
        self._throttle.flush()

    def export_item(self):
        return self.plot

    def _redraw(self) -> None:
        for items in self._items.values():
            items.update()
        self._update_beta_line()
        self._update_iso_lines()

    def _update_beta_line(self) -> None:
        current = self.runs.current
        items = self._items.get(id(current)) if current is not None else None
        if items is None or len(current.steps) == 0:
            self.beta_line.hide()
            self.beta_value = None
            return
        r, d = current.steps.last("rate"), current.steps.last("distortion")
        beta = current.current_beta()
        if beta is None or not (np.isfinite(r) and np.isfinite(d)):
            self.beta_line.hide()
            return
        self.beta_value = beta
        self.beta_line.setPen(pen(current.colour, 1.5, style=Qt.PenStyle.DashLine))
        self.beta_line.setAngle(math.degrees(math.atan(-beta)))
        self.beta_line.setPos(QPointF(float(r), float(d)))
        self.beta_line.label.setFormat(f"slope −β, β = {beta:.3g}")
        self.beta_line.show()

    def _update_iso_lines(self, *_args) -> None:
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        lo, hi = x0 + y0, x1 + y1
        step = nice_step(hi - lo, 6)
        first = math.ceil(lo / step) * step
        values = [first + i * step for i in range(ISO_LINES) if first + i * step < hi]
        # Only non-negative R + D make sense (both terms are non-negative for binary data).
        values = [v for v in values if v > 0]
        self.iso_values = values
        for i, line in enumerate(self.iso_lines):
            if i < len(values):
                c = values[i]
                line.setPos(QPointF(c, 0.0))
                line.label.setFormat(f"ELBO = {-c:.4g}")
                line.show()
            else:
                line.hide()

    # ------------------------------------------------------------------ hover
    def _on_mouse_moved(self, event) -> None:
        pos = event[0]
        vb = self.plot.getViewBox()
        if not self.plot.sceneBoundingRect().contains(pos):
            self._hide_hover()
            return
        p = vb.mapSceneToView(pos)
        self.hover_at(p.x(), p.y())

    def hover_at(self, x: float, y: float) -> str | None:
        """Show the point nearest to data coordinates (x, y) within a few pixels; returns its text."""
        vb = self.plot.getViewBox()
        px, py = vb.viewPixelSize()
        best = None
        for items in self._items.values():
            if len(items.points) == 0:
                continue
            dx = (items.points[:, 0] - x) / max(px, 1e-12)
            dy = (items.points[:, 1] - y) / max(py, 1e-12)
            dist = np.hypot(dx, dy)
            i = int(np.argmin(dist))
            if dist[i] <= HOVER_RADIUS_PX and (best is None or dist[i] < best[0]):
                best = (float(dist[i]), items, i)
        if best is None:
            self._hide_hover()
            return None
        _, items, i = best
        r, d = items.points[i]
        kind, step, epoch = items.meta[i] if i < len(items.meta) else ("point", -1, -1)
        where = f"epoch {epoch}, step {step}" if step >= 0 else kind
        text = (f"{items.session.name} · {kind} ({where})\n"
                f"R = {r:.3f} nats   D = {d:.3f} nats\nELBO = {-(r + d):.3f} nats")
        self.hover_marker.setData([r], [d])
        self.hover_text.setText(text)
        # Keep the read-out inside the view: open it towards the centre.
        (x0, x1), (y0, y1) = vb.viewRange()
        self.hover_text.setAnchor((1.0 if r > (x0 + x1) / 2 else 0.0, 0.0 if d > (y0 + y1) / 2 else 1.0))
        self.hover_text.setPos(r, d)
        self.hover_marker.show()
        self.hover_text.show()
        return text

    def _hide_hover(self) -> None:
        self.hover_marker.hide()
        self.hover_text.hide()
