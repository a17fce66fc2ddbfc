"""Shared pieces of the plot panels: a bounded-rate refresh, plot styling, image export.

Live plots follow one rule: items are created once, and a panel marks itself *dirty* when its
session grows; a :class:`RefreshThrottle` then redraws at most ``max_hz`` times a second with
``setData`` on the existing items, however fast events arrive.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QWidget

from models.errors import LatentExplorerError

#: Redraw rate of live plots (Hz). Events arriving faster are coalesced.
REFRESH_HZ = 15

_configured = False


def configure_pyqtgraph() -> None:
    """App-wide pyqtgraph look: light background, antialiased lines. Idempotent."""
    global _configured
    if _configured:
        return
    pg.setConfigOptions(background="w", foreground="#222222", antialias=True)
    _configured = True


class RefreshThrottle(QObject):
    """Call ``callback`` at most ``max_hz`` times a second after :meth:`mark_dirty`.

    The first change after a quiet period is drawn after one interval (so a burst of events is
    drawn once); while changes keep coming, redraws happen once per interval. No timer runs while
    nothing changes.
    """

    def __init__(self, callback: Callable[[], None], max_hz: float = REFRESH_HZ,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._callback = callback
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(max(1, int(1000 / max_hz)))
        self._timer.timeout.connect(self._fire)
        self._dirty = False
        self.redraws = 0

    def mark_dirty(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Redraw now if anything changed (tests and image export use it)."""
        self._timer.stop()
        self._fire()

    def _fire(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        self._callback()


def style_plot(plot: pg.PlotItem, title: str | None, x_label: str, y_label: str,
               x_units: str | None = None, y_units: str | None = None) -> None:
    """Axis labels with units in words (``"nats"``), a light grid, no SI prefixes on nats."""
    if title:
        plot.setTitle(title, size="10pt")
    plot.setLabel("bottom", x_label, units=x_units)
    plot.setLabel("left", y_label, units=y_units)
    for name in ("bottom", "left"):
        plot.getAxis(name).enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.15)


def nice_step(span: float, target: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``target`` intervals."""
    if not math.isfinite(span) or span <= 0:
        return 1.0
    raw = span / max(1, target)
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * power:
            return m * power
    return 10.0 * power


def finite_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the rows where x or y is NaN or infinite (pyqtgraph draws nothing sensible there)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.all():
        return x, y
    return x[ok], y[ok]


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
        exporter = exporters.ImageExporter(self.export_item())
        width = max(1, int(exporter.params["width"] * scale))
        exporter.params.param("width").setValue(width)
        image = exporter.export(toBytes=True)
        if image is None or image.isNull() or not image.save(path):
            raise ImageSaveError(
                f"{path}: cannot write the image (unknown image format or folder not writable)"
            )


class ImageSaveError(LatentExplorerError):
    """A plot image could not be written."""
