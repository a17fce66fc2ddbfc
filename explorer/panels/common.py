"""Shared pieces of the plot panels: settled ranges, empty hints, image export (the axes:
``axes.py``; the bounded-rate refresh: ``refresh.py``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.ma  # noqa: F401  (np.percentile imports it on first use: a 40 ms stall mid-run)
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRect, QSize, Qt
from PySide6.QtGui import QFont, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from models.errors import LatentExplorerError


#: What an empty plot says instead of showing axes that mean nothing (before any run).
EMPTY_HINT = "No run yet: press Start (F5) or open a run"
#: The share of a history whose values set a plot's automatic range: the last 80% of the rows,
#: so the first steps' transient (distortion of several hundred nats) does not squash the rest.
SETTLED_FRACTION = 0.8
#: Percentiles of the settled part that bound the range (a few outlying minibatches do not count).
SETTLED_PERCENTILES = (0.5, 99.5)

_configured = False


def configure_pyqtgraph() -> None:
    """App-wide pyqtgraph look: light background, antialiased lines. Idempotent."""
    global _configured
    if _configured:
        return
    pg.setConfigOptions(background="w", foreground="#222222", antialias=True)
    _configured = True


def settled_range(arrays, fraction: float = SETTLED_FRACTION,
                  extra=()) -> tuple[float, float] | None:
    """A robust (low, high) of the settled part of histories: of each array in ``arrays`` the
    last ``fraction`` of its rows, trimmed to :data:`SETTLED_PERCENTILES`; ``extra`` arrays (the
    validation points, few and settled) count whole. None when nothing is finite.

    The early transient is not in the range but still drawn: zooming out shows it.
    """
    parts = []
    for a in arrays:
        a = np.asarray(a, dtype=float)
        if len(a) == 0:
            continue
        tail = a[int(len(a) * (1.0 - fraction)):] if len(a) >= 5 else a
        tail = tail[np.isfinite(tail)]
        if tail.size:
            lo, hi = np.percentile(tail, SETTLED_PERCENTILES)
            parts += [lo, hi]
    for a in extra:
        a = np.asarray(a, dtype=float)
        a = a[np.isfinite(a)]
        if a.size:
            parts += [float(a.min()), float(a.max())]
    if not parts:
        return None
    lo, hi = float(min(parts)), float(max(parts))
    if hi - lo < 1e-9 * max(1.0, abs(hi)):
        pad = max(abs(hi) * 0.05, 1e-3)
        lo, hi = lo - pad, hi + pad
    return lo, hi


#: A live plot's view may be this many times its data's settled span before it closes in...
SLACK = 1.6
#: ...and when it moves, it leaves this share of the span free on each side, for the data to
#: drift into (a settling run's trajectory moves at every redraw).
MARGIN = 0.1
#: ...and where the data left the view, this share more on that side: a run still settling
#: keeps moving the same way (distortion falling, rate rising), and the next move waits longer.
TREND = 0.25


class SettledRange(QObject):
    """Keeps one axis of a view box on the settled part of the data until the user zooms or pans.

    ``compute()`` returns the data's (low, high) for that axis (see :func:`settled_range`) or
    None. :meth:`update` applies it with :data:`MARGIN` to spare on each side (or ``headroom``
    past the high end), and moves the view only when the data leave it or fill less than
    ``1 / SLACK`` of it: a move rebuilds the axes and reflows every item on the plot, and while
    a run settles its range changed at nearly every redraw (the rate-distortion plane's redraw
    and repaint were the longest stalls of the event loop while a run trained). A zoom or pan
    with the mouse hands the axis to the user; the plot's "A" button gives it back.
    """

    def __init__(self, plot: pg.PlotItem, axis: str, compute: Callable[[], tuple[float, float] | None],
                 padding: float = 0.05, parent: QObject | None = None,
                 headroom: float = 0.0, floor: float | None = None) -> None:
        super().__init__(parent)
        self.plot = plot
        self.axis = axis
        self.compute = compute
        self.padding = padding
        #: Room left past the high end (a share of the span), for data that grow there (the
        #: steps of a live run): the range then moves only when they fill it, not on every
        #: redraw, and the axes are not rebuilt with each new step.
        self.headroom = headroom
        #: A bound the data cannot pass (a rate is never negative): padding and room stop there
        #: while the data keep to it.
        self.floor = floor
        self.active = True
        self._last: tuple[float, float] | None = None
        self._setting = False
        self.follow(plot)

    def follow(self, plot: pg.PlotItem) -> None:
        """Take this axis of ``plot`` too (a plot linked to this one): no auto-range of its own,
        and a zoom or pan there hands the axis to the user as well."""
        vb = plot.getViewBox()
        vb.enableAutoRange(**{self.axis: False})
        vb.sigRangeChangedManually.connect(self._manual)
        plot.autoBtn.clicked.connect(self.reset)  # after pyqtgraph's own slot: it wins

    def _manual(self, mask) -> None:
        which = 0 if self.axis == "x" else 1
        if not self._setting and (mask is None or mask[which]):
            self.active = False

    def reset(self, *_args) -> None:
        """Back to the settled range (the "A" button)."""
        self.active = True
        self._last = None
        self.plot.getViewBox().enableAutoRange(**{self.axis: False})
        self.update()

    def update(self) -> bool:
        """Move the view if the data call for it; True if it moved."""
        target = self.target()
        if target is None:
            return False
        _set_ranges((self,), **{f"{self.axis}Range": target})
        return True

    def target(self) -> tuple[float, float] | None:
        """The range the view should move to now, or None if it should stay (it is then
        remembered as the view's: the caller sets it, :meth:`update` or :func:`update_ranges`)."""
        if not self.active:
            return None
        lo_hi = self.compute()
        if lo_hi is None:
            return None
        lo, hi = lo_hi
        floor = self.floor if self.floor is not None and lo >= self.floor else -math.inf
        pad = (hi - lo) * self.padding
        lo, hi = max(lo - pad, floor), hi + pad
        last, span = self._last, hi - lo
        if self.headroom > 0:
            if (last is not None and last[0] <= lo + 0.02 * span and hi <= last[1]
                    and last[1] - last[0] <= span * (1 + 2 * self.headroom)):
                return None  # the data still fit in the room left last time
            hi = lo + span * (1 + self.headroom)
            if last is not None and abs(last[0] - lo) <= 0.02 * span and abs(last[1] - hi) <= 0.02 * span:
                return None
        else:
            if (last is not None and last[0] <= lo and hi <= last[1]
                    and last[1] - last[0] <= span * SLACK):
                return None  # the data fit and fill most of the view: a move is not worth its redraw
            below = MARGIN + (TREND if last is not None and lo < last[0] else 0.0)
            above = MARGIN + (TREND if last is not None and hi > last[1] else 0.0)
            lo, hi = lo - below * span, hi + above * span  # room to drift before the next move
        lo = max(lo, floor)
        self._last = (lo, hi)
        return lo, hi


def update_ranges(x: SettledRange, y: SettledRange) -> bool:
    """Move both axes of one plot in a single range change (True if either moved): each change
    reflows the plot's items and rebuilds its axes, and on the rate-distortion plane x and y
    tend to move together."""
    tx, ty = x.target(), y.target()
    if tx is None and ty is None:
        return False
    _set_ranges((x, y), xRange=tx, yRange=ty)
    return True


def _set_ranges(ranges: tuple[SettledRange, ...], **xy_range) -> None:
    """Set the view of ``ranges`` (one plot's) as theirs, not the user's: no hand-over."""
    for r in ranges:
        r._setting = True
    try:
        ranges[0].plot.getViewBox().setRange(padding=0, **xy_range)
    finally:
        for r in ranges:
            r._setting = False


class EmptyHint:
    """A short centred message in an empty plot, with the axes' meaningless numbers hidden.

    ``set_empty(True)`` shows the text and hides the tick values of the plot's axes;
    ``set_empty(False)`` (data arrived) hides the text and brings the values back.
    """

    def __init__(self, plot: pg.PlotItem, text: str = EMPTY_HINT,
                 axes: tuple[str, ...] = ("left", "bottom"), others=()) -> None:
        self.plot = plot
        self.axes = axes
        self.others = list(others)  # more axis items (a colour bar's) and items to hide
        vb = plot.getViewBox()
        self.item = pg.TextItem(text, color="#555555", anchor=(0.5, 0.5))
        font = QFont()
        font.setPointSizeF(10)
        self.item.setFont(font)
        self.item.setParentItem(vb)  # view-box pixels: stays centred whatever the range
        self.item.setZValue(50)
        self.empty: bool | None = None
        vb.sigResized.connect(self._place)
        self._place()
        self.set_empty(True)

    def _place(self, *_args) -> None:
        r = self.plot.getViewBox().boundingRect()
        self.item.setPos(r.center())

    def set_empty(self, empty: bool) -> None:
        if empty == self.empty:
            return
        self.empty = empty
        self.item.setVisible(empty)
        for name in self.axes:
            self.plot.getAxis(name).setStyle(showValues=not empty)
        for item in self.others:
            if isinstance(item, pg.AxisItem):
                item.setStyle(showValues=not empty)
            else:
                item.setVisible(not empty)


def finite_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the rows where x or y is NaN or infinite (pyqtgraph draws nothing sensible there)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.all():
        return x, y
    return x[ok], y[ok]


def set_data(item: pg.PlotDataItem | pg.PlotCurveItem | pg.ScatterPlotItem, x, y) -> bool:  # noqa: ANN001
    """``item.setData(x, y)`` unless it already shows exactly these points (True if it had
    to): a redraw of a live plot sets every item, and most (the validation points between
    epochs, a sweep's hidden frontier lines) have not changed; each ``setData`` costs pyqtgraph
    a bounds and path rebuild."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    last = getattr(item, "_shown_xy", None)
    if last is not None and np.array_equal(last[0], x) and np.array_equal(last[1], y):
        return False
    item.setData(x, y)
    item._shown_xy = (x.copy(), y.copy())
    return True


def pen(colour: str, width: float = 1.5, alpha: int = 255, style=Qt.PenStyle.SolidLine):
    c = pg.mkColor(colour)
    c.setAlpha(alpha)
    return pg.mkPen(c, width=width, style=style)


def brush(colour: str, alpha: int = 255):
    c = pg.mkColor(colour)
    c.setAlpha(alpha)
    return pg.mkBrush(c)


class PlotPanel(QWidget):
    """A panel that shows plots; the main window's "Save plot as image" exports :meth:`export_item`."""

    #: Title used in file names and menus.
    plot_title = "plot"

    def export_item(self) -> pg.GraphicsObject | pg.GraphicsScene:
        """The graphics item (a PlotItem, or a layout) that "Save plot as image" writes."""
        raise NotImplementedError

    def flush(self) -> None:
        """Draw pending data now."""

    def save_image(self, path: str, scale: float = 2.0) -> None:
        """Write the panel's plot to ``path`` (PNG, JPG, ... by extension) at ``scale`` x size.

        Raises :class:`ImageSaveError` (one line) when the file cannot be written.
        """
        import pyqtgraph.exporters as exporters

        self.flush()
        item = self.export_item()
        exporter = exporters.ImageExporter(item)
        width = max(1, int(exporter.params["width"] * scale))
        exporter.params.param("width").setValue(width)
        factor = width / max(1.0, exporter.getTargetRect().width())
        # Legends ignore the painter's scale (pyqtgraph draws them in device pixels): scale them
        # with the image for the export, about their anchored corner, so they stay readable.
        scene = item.scene() if hasattr(item, "scene") and callable(item.scene) else item
        legends = [it for it in scene.items() if isinstance(it, pg.LegendItem) and it.isVisible()]
        saved = [(legend, legend.scale(), legend.transformOriginPoint()) for legend in legends]
        try:
            for legend in legends:
                r = legend.boundingRect()
                anchor_right = (legend.opts.get("offset") or (1, 1))[0] < 0
                legend.setTransformOriginPoint(r.topRight() if anchor_right else r.topLeft())
                legend.setScale(factor)
            image = exporter.export(toBytes=True)
        finally:
            for legend, old_scale, origin in saved:
                legend.setScale(old_scale)
                legend.setTransformOriginPoint(origin)
        if image is None or image.isNull() or not image.save(path):
            raise ImageSaveError(
                f"{path}: cannot write the image (unknown image format or folder not writable)"
            )


class ImageSaveError(LatentExplorerError):
    """A plot image could not be written."""


class StatusText(QWidget):
    """A few lines of text that change often (progress), drawn without re-laying out the window.

    A ``QLabel`` asks its parents to recompute their layout whenever its text changes; on a dock
    full of form fields that costs more than the repaint. This widget has a fixed height of
    ``lines`` lines, takes the width it is given, and only repaints when its text changes.
    """

    def __init__(self, lines: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._lines = lines
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + 4)

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.update()

    def sizeHint(self) -> QSize:
        return QSize(200, self.height())

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setPen(self.palette().windowText().color())
        flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop) | int(Qt.TextFlag.TextWordWrap)
        painter.drawText(QRect(0, 0, self.width(), self.height()), flags, self._text)
        painter.end()
