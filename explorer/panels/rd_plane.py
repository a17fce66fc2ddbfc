"""The rate-distortion plane: where each run sits between compressing and reconstructing.

x is the rate R = KL(q(z|x) || p(z)), y the distortion D = -E_q[log p(x|z)], both per sample in
nats, so -ELBO = R + D. Shown per run:

- the training trajectory, one point per logged minibatch (thin line);
- the validation point of each epoch (dots joined by a dashed line);
- for the current run, the line of slope -beta through its latest point: the points of equal
  training objective D + beta R (beta in effect, warm-up included), along which the optimiser is
  indifferent;
- grey diagonals R + D = c: lines of equal ELBO, labelled with the ELBO.

Hovering shows the nearest point's step, R, D and ELBO; clicking a point makes its run the
current one (the curves, KL panel, diagnosis and explorer follow). Runs overlay with a legend.
A sweep's runs are drawn faint, behind its frontier and the boundary D = H - R
(:mod:`explorer.panels.frontier`); a hidden run (runs table) is not drawn.

The view follows the settled part of the runs (the last 80% of each history, trimmed of
outliers, and every validation point): the first steps' distortion of several hundred nats stays
drawn, reachable by zooming out, without squashing the region where runs differ. A zoom or pan
with the mouse leaves the view to the user; the "A" button brings the settled range back.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGraphicsItem, QLabel, QVBoxLayout, QWidget

from ..state import RunSession, RunsModel
from .axes import live_axes, nice_step, style_plot
from .common import EmptyHint, PlotPanel, SettledRange, brush, pen, settled_range, update_ranges
from .frontier import FrontierItems
from .paint import cache_legend
from .rd_items import RunItems
from .refresh import RefreshThrottle

#: Number of iso-ELBO lines kept ready; those not needed are hidden.
ISO_LINES = 10
HOVER_RADIUS_PX = 12


def _clip_line(c: float, slope: float, box: tuple[float, float, float, float]):
    """The part of the line y = c + slope * x inside box (x0, x1, y0, y1), or None."""
    x0, x1, y0, y1 = box
    if slope == 0:
        return ((x0, c), (x1, c)) if y0 <= c <= y1 else None
    # x where the line crosses y0 and y1 (slope is negative or positive; sort them)
    xa, xb = sorted(((y0 - c) / slope, (y1 - c) / slope))
    lo, hi = max(x0, xa), min(x1, xb)
    if not lo < hi:
        return None
    return (lo, c + slope * lo), (hi, c + slope * hi)


class RateDistortionPanel(PlotPanel):
    """Live (R, D) trajectories of every run in a :class:`RunsModel`."""

    plot_title = "rate-distortion"

    def __init__(self, runs: RunsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.plot_widget = pg.PlotWidget(axisItems=live_axes())
        self.plot_widget.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.plot: pg.PlotItem = self.plot_widget.getPlotItem()
        style_plot(self.plot, "Rate–distortion plane (per sample)", "rate R = KL(q(z|x) ‖ p(z))",
                   "distortion D = −E log p(x|z)", "nats", "nats")
        self.plot.getAxis("bottom").setLabel("rate R = KL(q(z|x) ‖ p(z))", units="nats")
        self.legend = self.plot.addLegend(offset=(-10, 10), labelTextSize="9pt")
        self.legend.setBrush(brush("#ffffff", 200))

        # Guide lines are drawn as clipped segments of two curves (one path each), not as
        # InfiniteLines: eleven InfiniteLines cost more to paint than all the data. Their labels
        # are cached as pixmaps, so a data update does not re-render their text.
        self.iso_curve = pg.PlotCurveItem(
            pen=pen("#888888", 1.0, alpha=140, style=Qt.PenStyle.DotLine), connect="pairs",
            antialias=False)
        self.iso_curve.setZValue(-10)
        self.plot.addItem(self.iso_curve, ignoreBounds=True)
        self.iso_labels: list[pg.TextItem] = []
        for _ in range(ISO_LINES):
            label = pg.TextItem("", color="#777777", anchor=(0.5, 1.0), rotateAxis=(1, -1))
            label.textItem.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            label.setZValue(-9)
            label.hide()
            self.plot.addItem(label, ignoreBounds=True)
            self.iso_labels.append(label)
        self.iso_values: list[float] = []
        self._iso_key: tuple | None = None

        self.beta_curve = pg.PlotCurveItem(antialias=True)
        self.beta_curve.setZValue(-5)
        self.plot.addItem(self.beta_curve, ignoreBounds=True)
        self.beta_label = pg.TextItem("", color="#333333", anchor=(0.5, 0.0))
        self.beta_label.textItem.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.beta_label.setZValue(-4)
        self.beta_label.hide()
        self.plot.addItem(self.beta_label, ignoreBounds=True)
        self.beta_value: float | None = None
        self.beta_point: tuple[float, float] | None = None

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
            "dashed: slope −β (equal training objective D + βR)   dotted grey: equal ELBO = −(R + D)   "
            "◆ black: a sweep's frontier   red: D = H − R (H from the best IWAE)   click: select a run"
        )
        self.readout.setWordWrap(True)
        self.readout.setStyleSheet("color: #444; font-size: 9pt;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.readout)

        self._items: dict[int, RunItems] = {}
        self.empty_hint = EmptyHint(self.plot)
        # R >= 0 always, D >= 0 for discrete data: no view into what cannot be (a floor only
        # while the data keep to it: a Gaussian's D can be negative).
        self.x_range = SettledRange(self.plot, "x", lambda: self._settled(0), parent=self, floor=0.0)
        self.y_range = SettledRange(self.plot, "y", lambda: self._settled(1), parent=self, floor=0.0)
        self._throttle = RefreshThrottle(self._redraw, parent=self, view=self.plot_widget)
        self._mouse_proxy = pg.SignalProxy(
            self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._on_mouse_moved
        )
        self.plot.getViewBox().sigRangeChanged.connect(self._update_guides)
        self.frontier = FrontierItems(self.plot)
        self.plot.scene().sigMouseClicked.connect(self._on_click)

        runs.sessionAdded.connect(self._add_session)
        runs.sessionRemoved.connect(self._remove_session)
        runs.currentChanged.connect(lambda _s: self._throttle.mark_dirty())
        for session in runs.sessions():
            self._add_session(session)

    # ------------------------------------------------------------------ sessions
    def _add_session(self, session: RunSession) -> None:
        items = RunItems(self.plot, session)
        self._items[id(session)] = items
        session.stepsAppended.connect(self._throttle.mark_dirty)
        session.epochsAppended.connect(self._throttle.mark_dirty)
        session.cleared.connect(self._throttle.mark_dirty)
        session.visibilityChanged.connect(self._throttle.mark_dirty)
        session.diagnosisChanged.connect(self._throttle.mark_dirty)
        session.infoChanged.connect(lambda s=session: self._relabel(s))
        cache_legend(self.legend)
        self._throttle.mark_dirty()

    def _remove_session(self, session: RunSession) -> None:
        items = self._items.pop(id(session), None)
        if items is None:
            return
        for sig in (session.stepsAppended, session.epochsAppended, session.cleared,
                    session.visibilityChanged, session.diagnosisChanged):
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
            cache_legend(self.legend)

    def run_items(self, session: RunSession) -> RunItems:
        """The items drawing ``session`` (tests compare their data with the run file)."""
        return self._items[id(session)]

    # ------------------------------------------------------------------ drawing
    def flush(self) -> None:
        self._throttle.flush()

    def export_item(self):
        return self.plot

    def _settled(self, column: int) -> tuple[float, float] | None:
        """The settled range of R (column 0) or D (1) over every run's drawn points."""
        trains, vals = [], []
        for items in self._items.values():
            n = items.n_train_points
            trains.append(items.points[:n, column])
            vals.append(items.points[n:, column])
        return settled_range(trains, extra=vals)

    def _redraw(self) -> None:
        for items in self._items.values():
            items.update()
        self.empty_hint.set_empty(not any(len(items.points) for items in self._items.values()))
        current = self.runs.current
        self.frontier.update(self.runs.sessions(), current)
        update_ranges(self.x_range, self.y_range)
        self.beta_value = self.beta_point = None
        if current is not None and id(current) in self._items and len(current.steps):
            r, d = current.steps.last("rate"), current.steps.last("distortion")
            beta = current.current_beta()
            if beta is not None and np.isfinite(r) and np.isfinite(d):
                self.beta_value, self.beta_point = float(beta), (float(r), float(d))
                self.beta_curve.setPen(pen(current.colour, 1.5, style=Qt.PenStyle.DashLine))
        self._update_guides()

    def _label_spot(self, ax: float, ay: float, bx: float, by: float) -> tuple[float, float]:
        """Where along the segment an equal-ELBO label goes: 70% of the way, or 35% where that
        falls under the legend (its box widened by a label's size)."""
        vb = self.plot.getViewBox()
        legend = self.legend.sceneBoundingRect().adjusted(-90, -4, 4, 24)
        for t in (0.7, 0.35):
            x, y = ax + t * (bx - ax), ay + t * (by - ay)
            if not legend.contains(vb.mapViewToScene(pg.QtCore.QPointF(x, y))):
                break
        return x, y

    def _update_guides(self, *_args) -> None:
        """Place the iso-ELBO lines and the slope -beta line for the current view range."""
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        box = (x0, x1, y0, y1)
        # Lines of equal ELBO: R + D = c, at round values of c across the view.
        lo, hi = x0 + y0, x1 + y1
        step = nice_step(hi - lo, 6)
        first = math.ceil(lo / step) * step
        values = [first + i * step for i in range(ISO_LINES) if first + i * step < hi]
        values = [v for v in values if v > 0]  # R and D are non-negative for binary data
        key = (box, tuple(values))
        if key != self._iso_key:
            self._iso_key = key
            self.iso_values = values
            xs, ys = [], []
            for i, label in enumerate(self.iso_labels):
                seg = _clip_line(values[i], -1.0, box) if i < len(values) else None
                if seg is None:
                    label.hide()
                    continue
                (ax, ay), (bx, by) = seg
                xs += [ax, bx]
                ys += [ay, by]
                text = f"ELBO = {-values[i]:.4g}"
                if label.toPlainText() != text:
                    label.setText(text)
                label.setPos(*self._label_spot(ax, ay, bx, by))
                label.show()
            self.iso_curve.setData(np.asarray(xs, float), np.asarray(ys, float))
        # The line of equal training objective D + beta R through the latest point.
        seg = None
        if self.beta_point is not None:
            r, d = self.beta_point
            seg = _clip_line(d + self.beta_value * r, -self.beta_value, box)
        if seg is None:
            self.beta_curve.setData([], [])
            self.beta_label.hide()
            return
        (ax, ay), (bx, by) = seg
        self.beta_curve.setData([ax, bx], [ay, by])
        text = f"slope −β, β = {self.beta_value:.3g}"
        if self.beta_label.toPlainText() != text:
            self.beta_label.setText(text)
        axis = pg.Point(1.0, -self.beta_value)
        if self.beta_label.rotateAxis != axis:  # the text follows the line's direction
            self.beta_label.rotateAxis = axis
            self.beta_label.setAngle(0)
        x, y = ax + 0.45 * (bx - ax), ay + 0.45 * (by - ay)
        # Below the line, or above it where the plane's lower edge would cut the text.
        vb = self.plot.getViewBox()
        room = vb.sceneBoundingRect().bottom() - vb.mapViewToScene(pg.QtCore.QPointF(x, y)).y()
        height = self.beta_label.textItem.boundingRect().height()
        anchor = pg.Point(0.5, 0.0 if room > 2 * height else 1.0)
        if self.beta_label.anchor != anchor:
            self.beta_label.setAnchor(anchor)
        self.beta_label.setPos(x, y)
        self.beta_label.show()

    # ------------------------------------------------------------------ hover
    def _on_mouse_moved(self, event) -> None:
        pos = event[0]
        vb = self.plot.getViewBox()
        if not self.plot.sceneBoundingRect().contains(pos):
            self._hide_hover()
            return
        p = vb.mapSceneToView(pos)
        self.hover_at(p.x(), p.y())

    def _nearest(self, x: float, y: float):
        """(pixels, items, index) of the drawn point nearest to (x, y) within a few pixels."""
        px, py = self.plot.getViewBox().viewPixelSize()
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
        return best

    def select_at(self, x: float, y: float) -> RunSession | None:
        """Make the run of the point nearest to (x, y) (a few pixels) current; returns it."""
        best = self._nearest(x, y)
        if best is None:
            return None
        self.runs.set_current(best[1].session)
        return best[1].session

    def _on_click(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and not event.double():
            p = self.plot.getViewBox().mapSceneToView(event.scenePos())
            self.select_at(p.x(), p.y())

    def hover_at(self, x: float, y: float) -> str | None:
        """Show the point nearest to data coordinates (x, y) within a few pixels; returns its text."""
        vb = self.plot.getViewBox()
        best = self._nearest(x, y)
        if best is None:
            self._hide_hover()
            return None
        _, items, i = best
        r, d = items.points[i]
        kind, step, epoch = items.describe(i)
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
