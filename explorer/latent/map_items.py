"""What the latent map draws besides its scatter: label colours, symbol sizes, the density image
item, and the draggable anchor item (a pyqtgraph ``TargetItem``)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage

#: Colours of labels 0..9 (the widely used "tab10" qualitative palette); more labels cycle hues.
LABEL_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
PRIOR_COLOUR = (140, 140, 170, 150)
CURRENT_PEN = "#d62728"


def foreground() -> QColor:
    """The plots' text colour (dark on the app's light background, light on a dark one)."""
    return pg.mkColor(pg.getConfigOption("foreground"))

def label_colour(k: int, n: int, alpha: int = 150) -> QColor:
    if n <= len(LABEL_COLOURS):
        c = QColor(LABEL_COLOURS[k])
    else:
        c = pg.intColor(k, hues=n)
    c.setAlpha(alpha)
    return c


def point_size(n: int) -> int:
    """Symbol size in pixels: smaller for bigger clouds, so dense regions still read."""
    return 3 if n > 20_000 else 4 if n > 5_000 else 6


class DensityImageItem(pg.GraphicsObject):
    """An RGBA image stretched over a rectangle in view coordinates, row 0 at the rectangle's
    lowest y (as ``pg.ImageItem(axisOrder="row-major")`` draws it).

    The image is converted once, when set, to Qt's premultiplied ARGB32, the format its raster
    engine scales without converting every pixel on every paint (``ImageItem`` keeps RGBA8888
    and redraws through its level and lookup machinery); a zoom step repaints it scaled.
    """

    def __init__(self) -> None:
        super().__init__()
        self.image: np.ndarray | None = None  #: the RGBA uint8 [ny, nx, 4] shown (tests read it)
        self._qimage: QImage | None = None
        self._rect = QRectF()

    def set_image(self, rgba: np.ndarray, rect: QRectF) -> None:
        rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
        ny, nx = rgba.shape[:2]
        wrapped = QImage(rgba.data, nx, ny, 4 * nx, QImage.Format.Format_RGBA8888)
        self.prepareGeometryChange()
        self._qimage = wrapped.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
        self.image = rgba
        self._rect = QRectF(rect)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        return QRectF(self._rect)

    def paint(self, painter, *_args) -> None:
        if self._qimage is not None:
            painter.drawImage(self._rect, self._qimage)


class AnchorItem(pg.TargetItem):
    """A draggable anchor; left-click or drag start makes it current, right-click asks for a menu."""

    sigSelected = Signal(object)
    sigMenuRequested = Signal(object, object)  # (item, screen position)

    def __init__(self, index: int, pos: tuple[float, float]) -> None:
        fg = foreground()
        super().__init__(
            pos=pos,
            size=16,
            symbol="o",
            pen=pg.mkPen(fg, width=2),
            hoverPen=pg.mkPen(CURRENT_PEN, width=4),
            brush=(255, 255, 255, 110),
            hoverBrush=(255, 255, 255, 170),
            label=f"A{index + 1}",
            labelOpts={"color": fg, "offset": (10, -10)},
        )
        self.index = index
        self.setZValue(20)

    def set_current(self, current: bool) -> None:
        colour = pg.mkColor(CURRENT_PEN) if current else foreground()
        self.setPen(pg.mkPen(colour, width=3 if current else 2))
        label = self.label()
        if label is not None:
            label.setColor(colour)

    def mouseDragEvent(self, ev) -> None:
        if ev.isStart() and ev.button() == Qt.MouseButton.LeftButton:
            self.sigSelected.emit(self)
        super().mouseDragEvent(ev)

    def mouseClickEvent(self, ev) -> None:
        if self.moving:
            super().mouseClickEvent(ev)
            return
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.sigSelected.emit(self)
        elif ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            self.sigMenuRequested.emit(self, ev.screenPos())
