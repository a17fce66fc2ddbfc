"""The latent map: a scatter of posterior means (or prior draws) with draggable anchors.

Speed with 70,000 points: the scatter is one ``ScatterPlotItem`` in pixel mode with a single
symbol and cached symbol pixmaps (``useCache``); its brushes are an array computed once per data
set (one ``QBrush`` per label, indexed by label). It is also cached as a whole in device
coordinates, so moving an anchor over it repaints a few pixels instead of 70,000 symbols; panning
shifts the cached picture; only zooming redraws the symbols. There is no grid (the axes would
redraw antialiased grid lines across the view on every repaint). Clicks find the nearest point with
numpy, not with pyqtgraph's per-point ``SpotItem`` objects (70,000 Python objects).

Zooming redraws every visible symbol, which is too slow for a frame when tens of thousands are on
screen. Then the cloud is shown as a density image instead: a 2-D histogram of the points in
bins of one symbol's size, each bin in the mean colour of its points' labels and as opaque as
that many overlapping symbols would be, shown through one ``ImageItem``. The image covers more
than the view, so panning moves it, and zooming scales it until its bins are twice or half their
size on screen, or it no longer covers the view; only then is it binned again (a few
milliseconds with ``np.bincount``), and once more, crisp, when a zoom has come to rest. Once
fewer than :data:`DENSITY_MIN_POINTS` points are in view, the scatter is back, point by point.
Clicks, the anchors and the highlight do not depend on which of the two is shown.

Interaction: drag an anchor to move it; double-click empty space to add one there; click an
anchor to make it current; right-click it for a menu (remove); Delete removes the current one.
Clicking a data point emits ``pointClicked(index)``.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QFontMetricsF, QPixmapCache
from PySide6.QtWidgets import QGraphicsItem, QMenu

from ..panels.paint import QuickAxis, apply_ranges_before_paint, cache_legend
from .density import density_rgba
from .map_items import (
    PRIOR_COLOUR,
    AnchorItem,
    DensityImageItem,
    foreground,
    label_colour,
    point_size,
)
from .model import LatentSpace

#: Clicks within this many pixels of a point select it.
CLICK_RADIUS_PX = 6.0
#: With at least this many points in view the cloud is drawn as a density image.
DENSITY_MIN_POINTS = 15_000
#: The density image covers the view widened by this fraction of its size on every side.
DENSITY_MARGIN = 0.5
#: While the view moves, the density image is binned again only when it no longer covers the
#: view or its bins grew or shrank on screen past this factor...
DENSITY_RESCALE = 2.0
#: ...and once the view has been still for DENSITY_IDLE_MS, when they are off by this factor.
DENSITY_RESCALE_IDLE = 1.15
DENSITY_IDLE_MS = 120
#: Opacity of one symbol (as the scatter's brushes).
SYMBOL_ALPHA = 150


class LatentMapView(pg.PlotWidget):
    """Scatter of the :class:`LatentSpace`'s points, its anchors and the path through them.

    Signals
    -------
    pointClicked(int) : a data point (index into ``space.latents``) was clicked
    dragFinished(int) : the user let go of anchor ``i``
    """

    pointClicked = Signal(int)
    dragFinished = Signal(int)

    def __init__(self, space: LatentSpace, parent=None) -> None:
        # Only the shown axes: pyqtgraph shows every axis item it is given.
        super().__init__(parent, axisItems={name: QuickAxis(name) for name in ("left", "bottom")})
        self.space = space
        QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), 64 * 1024))  # KB; the item cache
        self.setMenuEnabled(False)
        plot = self.getPlotItem()
        # No grid: the axes draw grid lines over the whole view, antialiased, on every repaint
        # (an anchor's move included): 10+ ms a frame, more than the 70,000 cached points.
        self.scatter = pg.ScatterPlotItem(
            pxMode=True, symbol="o", pen=None, useCache=True, hoverable=False, antialias=False
        )
        self.scatter.setAcceptedMouseButtons(Qt.MouseButton.NoButton)  # clicks: see _on_click
        self.scatter.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.scatter.setZValue(0)
        self.addItem(self.scatter)
        self.density = DensityImageItem()
        self.density.setZValue(0)
        self.density.hide()
        self.addItem(self.density, ignoreBounds=True)
        #: Draw many points as a density image (False: always the scatter; benchmarks compare).
        self.density_enabled = True
        self.density_bins = 0  # how many times the density image was binned (tests)
        self._density_key: tuple | None = None  # (x0, y0, bin_w, bin_h, nx, ny) of the image
        self._colours: np.ndarray | None = None  # [k, 3] label colours, 0-1
        self._point_labels: np.ndarray | None = None
        self._by_x: tuple[np.ndarray, np.ndarray] | None = None  # (x, y) sorted by x
        self._crowd_last: tuple[tuple[float, ...], bool] | None = None  # last view, crowded?
        self._density_idle = QTimer(self)  # bins anew, crisp, when a zoom has stopped
        self._density_idle.setSingleShot(True)
        self._density_idle.setInterval(DENSITY_IDLE_MS)
        self._density_idle.timeout.connect(self._density_at_rest)
        path_colour = foreground()
        path_colour.setAlpha(200)
        self.path_curve = pg.PlotCurveItem(
            pen=pg.mkPen(path_colour, width=2, style=Qt.PenStyle.DashLine)
        )
        self.path_curve.setZValue(10)
        self.addItem(self.path_curve, ignoreBounds=True)
        self.highlight = pg.ScatterPlotItem(
            size=14, symbol="s", pen=pg.mkPen(foreground(), width=2), brush=None, pxMode=True
        )
        self.highlight.setZValue(15)
        self.addItem(self.highlight, ignoreBounds=True)
        self.legend = pg.LegendItem(offset=(-10, 10), labelTextSize="8pt")
        self.legend.setParentItem(plot.getViewBox())
        self.anchors: list[AnchorItem] = []
        self._syncing = False
        self._brushes: np.ndarray | None = None

        # Only major ticks, labelled, and no SI prefix on unitless latent axes: the axes were
        # half of every zoom frame's time (their ticks and texts are rebuilt on each step).
        # The hidden top and right axes follow the range too: no SI prefix (a label each step).
        for name in ("left", "bottom", "top", "right"):
            axis = plot.getAxis(name)
            axis.enableAutoSIPrefix(False)
            axis.setStyle(maxTickLevel=0, maxTextLevel=0)
        vb = plot.getViewBox()
        apply_ranges_before_paint(vb)  # one paint per zoom or pan step, not two
        vb.sigResized.connect(self._fit_texts)
        vb.sigResized.connect(self._update_density)
        vb.sigRangeChanged.connect(self._update_density)
        self.scene().sigMouseClicked.connect(self._on_click)
        space.pointsChanged.connect(self.update_points)
        space.projectionChanged.connect(self._on_projection_changed)
        space.anchorsChanged.connect(self.rebuild_anchors)
        space.anchorMoved.connect(self._on_anchor_moved)
        space.currentAnchorChanged.connect(self._mark_current)
        for signal in (space.anchorMoved, space.anchorsChanged, space.interpolationChanged,
                       space.projectionChanged):
            signal.connect(self.update_path)
        self.update_points()
        self._on_projection_changed()
        self.rebuild_anchors()
        self.update_path()

    # ------------------------------------------------------------------ the cloud
    def update_points(self) -> None:
        """Set the scatter from the model (once per data set or projection)."""
        space = self.space
        pts = space.points
        n = len(pts)
        if space.labels is not None:
            labels = space.labels
            k = int(labels.max()) + 1
            palette = np.empty(k, dtype=object)
            palette[:] = [pg.mkBrush(label_colour(i, k)) for i in range(k)]
            self._brushes = palette[labels]
            self._colours = np.array([label_colour(i, k).getRgbF()[:3] for i in range(k)])
            self._point_labels = np.ascontiguousarray(labels, dtype=np.intp)
        else:
            self._brushes = None
            c = pg.mkColor(PRIOR_COLOUR)
            self._colours = np.array([c.getRgbF()[:3]])
            self._point_labels = None
        self._density_key = None
        self._by_x = None  # the points sorted by x, for counting those in view
        self._crowd_last = None
        brush = self._brushes if self._brushes is not None else pg.mkBrush(PRIOR_COLOUR)
        self.scatter.setData(
            x=pts[:, 0], y=pts[:, 1], brush=brush, size=point_size(n), pen=None, symbol="o"
        )
        self.show_point(None)
        self._update_legend()
        # Fit the cloud once; the view then stays put (a drag must not rescale it under the
        # pointer). The plot's "A" button fits again.
        plot = self.getPlotItem()
        if n:  # from the points, not the scatter's bounds: a hidden item (density shown) has none
            lo, hi = np.nanmin(pts, axis=0), np.nanmax(pts, axis=0)
            plot.getViewBox().setRange(xRange=(float(lo[0]), float(hi[0])),
                                       yRange=(float(lo[1]), float(hi[1])), padding=0.05)
        plot.disableAutoRange()
        self._update_density()

    # ------------------------------------------------------------------ density image
    @property
    def showing_density(self) -> bool:
        """Whether the cloud is drawn as a density image now (else as the scatter)."""
        return self.density.isVisible()

    def _density_at_rest(self) -> None:
        if self.getPlotItem() is not None:  # not closed since
            self._update_density(idle=True)

    def _update_density(self, *_args, idle: bool = False) -> None:
        """Choose the scatter or the density image for the view; bin the image when needed.

        During a zoom the image is scaled with the view (a few frames of coarser bins) and binned
        again when the view has been still for ``DENSITY_IDLE_MS`` (``idle``).
        """
        vb = self.getPlotItem().getViewBox()
        pts = self.space.points
        w_px, h_px = vb.width(), vb.height()
        use = self.density_enabled and len(pts) >= DENSITY_MIN_POINTS and w_px > 0 and h_px > 0
        if use:
            (x0, x1), (y0, y1) = vb.viewRange()
            use = self._crowded((x0, x1, y0, y1))
        if not use:
            if self.density.isVisible():
                self.density.hide()
                self.scatter.show()
            return
        bin_px = float(point_size(len(pts)))
        bw, bh = (x1 - x0) / w_px * bin_px, (y1 - y0) / h_px * bin_px
        key = self._density_key
        if key is not None:
            kx0, ky0, kbw, kbh, nx, ny = key
            covered = kx0 <= x0 and ky0 <= y0 and kx0 + nx * kbw >= x1 and ky0 + ny * kbh >= y1
            ratio = kbw / bw
            limit = DENSITY_RESCALE_IDLE if idle else DENSITY_RESCALE
            if covered and 1 / limit <= ratio <= limit:
                if not idle and not (1 / DENSITY_RESCALE_IDLE <= ratio <= DENSITY_RESCALE_IDLE):
                    self._density_idle.start()  # coarser or finer than it should be: later
                self._show_density()
                return
        self._bin_density(x0 - DENSITY_MARGIN * (x1 - x0), y0 - DENSITY_MARGIN * (y1 - y0),
                          bw, bh, int(math.ceil((1 + 2 * DENSITY_MARGIN) * w_px / bin_px)),
                          int(math.ceil((1 + 2 * DENSITY_MARGIN) * h_px / bin_px)))
        self._show_density()

    def _crowded(self, view: tuple[float, float, float, float]) -> bool:
        """Whether at least DENSITY_MIN_POINTS points are in ``view`` (x0, x1, y0, y1).

        A view that holds the last one holds at least as many points, and one inside it at
        most as many, so a zoom out over a crowded view or in over a sparse one needs no
        count; otherwise the points whose x is in view are a slice of the x-sorted order."""
        last = self._crowd_last
        if last is not None:
            (l0, l1, m0, m1), crowded = last
            x0, x1, y0, y1 = view
            if crowded and x0 <= l0 and x1 >= l1 and y0 <= m0 and y1 >= m1:
                return True
            if not crowded and x0 >= l0 and x1 <= l1 and y0 >= m0 and y1 <= m1:
                return False
        if self._by_x is None:
            pts = self.space.points
            order = np.argsort(pts[:, 0], kind="stable")
            self._by_x = (np.ascontiguousarray(pts[order, 0]), np.ascontiguousarray(pts[order, 1]))
        xs, ys = self._by_x
        i0 = int(np.searchsorted(xs, view[0], side="left"))
        i1 = int(np.searchsorted(xs, view[1], side="right"))
        band = ys[i0:i1]  # the points with x0 <= x <= x1
        crowded = i1 - i0 >= DENSITY_MIN_POINTS and int(
            np.count_nonzero((band >= view[2]) & (band <= view[3]))) >= DENSITY_MIN_POINTS
        self._crowd_last = (view, crowded)
        return crowded

    def _show_density(self) -> None:
        if not self.density.isVisible():
            self.scatter.hide()
            self.density.show()

    def _bin_density(self, x0: float, y0: float, bw: float, bh: float, nx: int, ny: int) -> None:
        """The density image of the points over nx x ny bins of bw x bh from (x0, y0)."""
        rgba = density_rgba(self.space.points, self._point_labels, self._colours,
                            (x0, y0, bw, bh, nx, ny), SYMBOL_ALPHA)
        self.density.set_image(rgba, QRectF(x0, y0, nx * bw, ny * bh))
        self._density_key = (x0, y0, bw, bh, nx, ny)
        self.density_bins += 1

    def _update_legend(self) -> None:
        self.legend.clear()
        space = self.space
        if space.labels is not None and space.label_names:
            k = int(space.labels.max()) + 1
            for i in range(k):
                name = space.label_names[i] if i < len(space.label_names) else str(i)
                sample = pg.ScatterPlotItem(symbol="o", size=8, pen=None, brush=label_colour(i, k, 255))
                self.legend.addItem(sample, name)
        elif not space.has_encodings:
            sample = pg.ScatterPlotItem(symbol="o", size=8, pen=None, brush=PRIOR_COLOUR)
            self.legend.addItem(sample, f"{len(space.points):,} draws from the prior N(0, I)")
        cache_legend(self.legend)  # drawn once, not on every zoom step
        self._fit_texts()

    def _fit_texts(self, *_args) -> None:
        """Axis names and legend sized to the map: the longest form of each axis name that fits
        along its axis, and as many legend columns as the labels need to fit in the height."""
        plot = self.getPlotItem()
        vb = plot.getViewBox()
        width, height = vb.width(), vb.height()
        if width <= 0 or height <= 0:
            return
        for form in range(3):
            x_label, y_label = self.space.axis_labels(form)
            fm = QFontMetricsF(plot.getAxis("left").label.font())
            if fm.horizontalAdvance(y_label) <= height - 10 and fm.horizontalAdvance(x_label) <= width - 10:
                break
        for name, text in (("bottom", x_label), ("left", y_label)):
            if plot.getAxis(name).labelText != text:
                plot.setLabel(name, text)
        n = len(self.legend.items)
        if n:
            row = self._legend_row_height()
            rows = max(1, int((height - 24) // row))
            columns = math.ceil(n / rows)
            if columns != self.legend.columnCount:
                self.legend.setColumnCount(columns)

    def _legend_row_height(self) -> float:
        label = self.legend.items[0][1]
        return max(12.0, label.boundingRect().height() + self.legend.layout.verticalSpacing())

    def _on_projection_changed(self) -> None:
        self._fit_texts()
        self._sync_all_anchors()

    def show_point(self, k: int | None) -> None:
        """Mark point ``k`` (the one whose sample is shown), or none."""
        if k is None:
            self.highlight.setData([], [])
        else:
            x, y = self.space.points[k]
            self.highlight.setData([x], [y])
        self.highlight.setVisible(k is not None)  # an empty scatter still costs a paint a frame

    # ------------------------------------------------------------------ anchors
    def rebuild_anchors(self) -> None:
        for item in self.anchors:
            self.removeItem(item)
        self.anchors = []
        for i in range(self.space.n_anchors):
            item = AnchorItem(i, self.space.anchor_position(i))
            item.sigPositionChanged.connect(self._on_target_moved)
            item.sigPositionChangeFinished.connect(self._on_target_finished)
            item.sigSelected.connect(lambda it: self.space.set_current_anchor(it.index))
            item.sigMenuRequested.connect(self._show_anchor_menu)
            self.addItem(item, ignoreBounds=True)
            self.anchors.append(item)
        self._mark_current(self.space.current_anchor)

    def _mark_current(self, current: int) -> None:
        for item in self.anchors:
            item.set_current(item.index == current)

    def _on_target_moved(self, item: AnchorItem) -> None:
        if self._syncing:
            return
        pos = item.pos()
        self._syncing = True
        try:
            self.space.move_anchor(item.index, (pos.x(), pos.y()))
        finally:
            self._syncing = False

    def _on_target_finished(self, item: AnchorItem) -> None:
        self.dragFinished.emit(item.index)

    def _on_anchor_moved(self, i: int) -> None:
        if self._syncing or i >= len(self.anchors):
            return  # the move came from this view's own drag
        self._sync_anchor(i)

    def _sync_anchor(self, i: int) -> None:
        self._syncing = True
        try:
            self.anchors[i].setPos(*self.space.anchor_position(i))
        finally:
            self._syncing = False

    def _sync_all_anchors(self) -> None:
        for i in range(min(len(self.anchors), self.space.n_anchors)):
            self._sync_anchor(i)

    def anchor_menu(self, index: int) -> QMenu:
        """The context menu of anchor ``index`` (Remove, Make current)."""
        menu = QMenu(self)
        remove = QAction(f"Remove anchor A{index + 1}", menu)
        remove.setEnabled(self.space.n_anchors > 1)
        remove.triggered.connect(lambda: self.space.remove_anchor(index))
        current = QAction(f"Make A{index + 1} current", menu)
        current.triggered.connect(lambda: self.space.set_current_anchor(index))
        menu.addAction(remove)
        menu.addAction(current)
        return menu

    def _show_anchor_menu(self, item: AnchorItem, screen_pos) -> None:
        menu = self.anchor_menu(item.index)
        menu.popup(screen_pos.toPoint() if hasattr(screen_pos, "toPoint") else screen_pos)

    def update_path(self, *_args) -> None:
        """Draw the interpolation path through the anchors, projected onto the map.

        Done at once on every change (a few dozen points): the moved anchor and its path are then
        repainted together, in one paint of the map.
        """
        xy = self.space.projection.project(self.space.path_latents())
        self.path_curve.setData(xy[:, 0], xy[:, 1])

    # ------------------------------------------------------------------ mouse and keys
    def _on_click(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        vb = self.getPlotItem().getViewBox()
        scene_pos = ev.scenePos()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return
        if any(isinstance(it, (AnchorItem, pg.TextItem)) for it in self.scene().items(scene_pos)):
            return
        pos = vb.mapSceneToView(scene_pos)
        if ev.double():
            self.space.add_anchor(xy=(pos.x(), pos.y()))
            ev.accept()
            return
        k = self.nearest_point(pos)
        if k is not None:
            self.show_point(k)
            self.pointClicked.emit(k)

    def nearest_point(self, pos: QPointF, radius_px: float = CLICK_RADIUS_PX) -> int | None:
        """Index of the point nearest ``pos`` (view coordinates) within ``radius_px`` pixels."""
        pts = self.space.points
        if not len(pts):
            return None
        px_w, px_h = self.getPlotItem().getViewBox().viewPixelSize()
        if not px_w or not px_h:
            return None
        dx = (pts[:, 0] - pos.x()) / px_w
        dy = (pts[:, 1] - pos.y()) / px_h
        d2 = dx * dx + dy * dy
        k = int(np.argmin(d2))
        return k if d2[k] <= radius_px * radius_px else None

    def keyPressEvent(self, ev) -> None:
        if ev.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.space.remove_anchor(self.space.current_anchor)
            ev.accept()
            return
        super().keyPressEvent(ev)
