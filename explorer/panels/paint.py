"""What keeps pyqtgraph's painting cheap: the GUI thread paints every plot in software, and a
paint longer than a few milliseconds is a stutter the user feels (benchmarks/ui_latency.py,
benchmarks/explorer_latency.py)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFont, QPainter, QPicture
from PySide6.QtWidgets import QGraphicsItem


def apply_ranges_before_paint(vb: pg.ViewBox) -> None:
    """A new view range costs one paint, not two: pyqtgraph applies a range to the items only
    while painting, and what that moves asks for a second paint of the same view. Applying it
    when the range changes lets the one paint show everything (the latent map's zoom frames
    halved; the live plots' range changes likewise)."""
    vb.sigRangeChanged.connect(lambda *_args: vb.updateMatrix())


def cache_legend(legend: pg.LegendItem) -> None:
    """Draw a legend's samples and texts once into a device cache instead of on every paint of
    the plot under them (ten labels cost ~3 ms a frame on the latent map). Call after adding
    entries; an entry that changes (a rename, a click that hides its curve) redraws its cache."""
    for sample, label in legend.items:
        for item in (sample, label, label.item):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


class _MeasuringPainter:
    """What ``AxisItem.generateDrawSpecs`` asks of its painter, a font and the rectangles of its
    texts, with the rectangles remembered: the same few tick labels come back frame after frame.
    A text not seen before is measured by a real painter, as pyqtgraph measures it."""

    def __init__(self) -> None:
        self._font = QFont()
        self._font_key = self._font.key()
        self._rects: dict[tuple, QRectF] = {}

    def setFont(self, font: QFont) -> None:  # noqa: N802 (QPainter's name)
        self._font = QFont(font)
        self._font_key = self._font.key()

    def boundingRect(self, rect: QRectF, flags, text: str) -> QRectF:  # noqa: N802
        key = (self._font_key, rect.width(), rect.height(), int(flags), text)
        found = self._rects.get(key)
        if found is None:
            if len(self._rects) > 512:
                self._rects.clear()
            picture = QPicture()
            painter = QPainter(picture)
            try:
                painter.setFont(self._font)
                found = painter.boundingRect(rect, flags, text)
            finally:
                painter.end()
            self._rects[key] = found
        return QRectF(found)  # a copy: the caller shrinks its height


class QuickAxis(pg.AxisItem):
    """An axis that draws its ticks and labels straight onto the plot's painter.

    pyqtgraph records an axis into a ``QPicture`` and then plays the picture back, on every
    range change, and measures each label's text anew each time; that was most of a zoom
    frame of the latent map and of a live plot's redraw. Here the drawing specification (ticks,
    label rectangles and texts) is what is kept until pyqtgraph marks the axis stale, the label
    rectangles are remembered, and each paint draws the specification once. It looks the same.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._measure = _MeasuringPainter()
        self._specs: tuple | None = None
        self._font = QFont()

    def paint(self, p, opt, widget) -> None:
        if self.picture is None:  # pyqtgraph's "stale" mark: range, size, style or ticks changed
            self._font = self.style["tickFont"] or QFont()  # a QPicture's painter's font
            self._measure.setFont(self._font)
            self._specs = self.generateDrawSpecs(self._measure)
            self.picture = True  # up to date until pyqtgraph sets it to None again
        if self._specs is not None:
            p.save()
            try:
                p.setFont(self._font)
                self.drawPicture(p, *self._specs)
            finally:
                p.restore()
