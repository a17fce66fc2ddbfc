"""Shared pieces of the plot panels: a bounded-rate refresh, plot styling, image export.

Live plots follow one rule: items are created once, and a panel marks itself *dirty* when its
session grows; a :class:`RefreshThrottle` then redraws at most ``max_hz`` times a second with
``setData`` on the existing items, however fast events arrive.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from models.errors import LatentExplorerError

#: Most redraws a second of one live plot panel. Events arriving faster are coalesced.
REFRESH_HZ = 10
#: At most one panel is redrawn per tick of this length (ms), so that no single turn of the
#: event loop has to paint every plot at once (software painting is slow on small machines).
TICK_MS = 25

_configured = False


def configure_pyqtgraph() -> None:
    """App-wide pyqtgraph look: light background, antialiased lines. Idempotent."""
    global _configured
    if _configured:
        return
    pg.setConfigOptions(background="w", foreground="#222222", antialias=True)
    _configured = True


class RefreshScheduler(QObject):
    """Redraws dirty panels one per tick, round robin, each at most ``max_hz`` times a second.

    One scheduler serves the whole application (:meth:`shared`), so the paint work of several
    live plots is spread over successive turns of the event loop instead of piling up in one.
    No timer runs while nothing is dirty.
    """

    _shared: "RefreshScheduler | None" = None

    def __init__(self, tick_ms: int = TICK_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: list[RefreshThrottle] = []
        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._tick)

    @classmethod
    def shared(cls) -> "RefreshScheduler":
        """The application's scheduler (made on first use, owned by the QCoreApplication)."""
        from PySide6.QtCore import QCoreApplication

        app = QCoreApplication.instance()
        if cls._shared is None or cls._shared.parent() is not app:
            cls._shared = cls(parent=app)
        return cls._shared

    def request(self, throttle: "RefreshThrottle") -> None:
        if throttle not in self._pending:
            self._pending.append(throttle)
        if not self._timer.isActive():
            self._timer.start()

    def cancel(self, throttle: "RefreshThrottle") -> None:
        if throttle in self._pending:
            self._pending.remove(throttle)

    def _tick(self) -> None:
        import shiboken6

        self._pending = [t for t in self._pending if shiboken6.isValid(t)]  # panels closed since
        now = time.monotonic()
        for i, throttle in enumerate(self._pending):
            if now - throttle.last_redraw >= throttle.min_interval:
                del self._pending[i]
                throttle._fire()
                break
        if not self._pending:
            self._timer.stop()


class RefreshThrottle(QObject):
    """Call ``callback`` at most ``max_hz`` times a second after :meth:`mark_dirty`.

    Redraws are scheduled by the shared :class:`RefreshScheduler`: a burst of events is drawn
    once, and while changes keep coming, the panel is redrawn at most ``max_hz`` times a second.
    """

    def __init__(self, callback: Callable[[], None], max_hz: float = REFRESH_HZ,
                 parent: QObject | None = None,
                 scheduler: RefreshScheduler | None = None) -> None:
        super().__init__(parent)
        self._callback = callback
        self._scheduler = scheduler or RefreshScheduler.shared()
        self.min_interval = 1.0 / max_hz
        self.last_redraw = -math.inf
        self._dirty = False
        self.redraws = 0

    def mark_dirty(self) -> None:
        self._dirty = True
        self._scheduler.request(self)

    def flush(self) -> None:
        """Redraw now if anything changed (tests and image export use it)."""
        self._scheduler.cancel(self)
        self._fire()

    def _fire(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.last_redraw = time.monotonic()
        self.redraws += 1
        self._callback()


def style_plot(plot: pg.PlotItem, title: str | None, x_label: str, y_label: str,
               x_units: str | None = None, y_units: str | None = None) -> None:
    """Axis labels with units in words (``"nats"``), no SI prefixes on nats.

    No grid: a grid makes each axis span the whole plot, so every data update repaints the
    axes and their text too, which triples the paint time of a live plot.
    """
    if title:
        plot.setTitle(title, size="10pt")
    plot.setLabel("bottom", x_label, units=x_units)
    plot.setLabel("left", y_label, units=y_units)
    for name in ("bottom", "left"):
        plot.getAxis(name).enableAutoSIPrefix(False)


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
