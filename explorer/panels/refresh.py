"""The bounded-rate refresh of the live plots.

Live plots follow one rule: items are created once, and a panel marks itself *dirty* when its
session grows; a :class:`RefreshThrottle` then redraws at most ``max_hz`` times a second with
``setData`` on the existing items, however fast events arrive, and the plot is repainted in a
later turn of the event loop than the one that changed its items.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QRectF, QTimer
from PySide6.QtWidgets import QGraphicsView
import shiboken6


#: Most redraws a second of one live plot panel. Events arriving faster are coalesced.
REFRESH_HZ = 10
#: At most one panel is redrawn per tick of this length (ms), so that no single turn of the
#: event loop has to paint every plot at once (software painting is slow on small machines).
TICK_MS = 25
#: A redrawn plot is repainted this long (ms) after its items changed, by a timer: the event
#: loop runs what came due meanwhile (input, other timers) between the two halves.
PAINT_DELAY_MS = 1

#: The events for a waiting view that end its wait: input (which may change any of its plots)
#: and a change of its size. Not every event: a view being deleted is sent some on the way.
_T = QEvent.Type
_ENDS_THE_WAIT = frozenset({
    _T.MouseButtonPress, _T.MouseButtonRelease, _T.MouseButtonDblClick, _T.MouseMove, _T.Wheel,
    _T.KeyPress, _T.KeyRelease, _T.Enter, _T.Leave, _T.HoverEnter, _T.HoverMove, _T.HoverLeave,
    _T.TouchBegin, _T.TouchUpdate, _T.TouchEnd, _T.NativeGesture, _T.Gesture,
    _T.DragEnter, _T.DragMove, _T.Drop, _T.Resize, _T.Show,
})


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

    With ``view`` (the graphics view whose items ``callback`` changes), the view's repaint is
    not the next thing the event loop does: Qt paints on a posted event, which runs before any
    timer that came due while the redraw ran, so the redraw and the paint were one stall (their
    sum, 8-10 ms for the rate-distortion plane here). The view ignores the scene's changes
    while the callback runs, and a timer :data:`PAINT_DELAY_MS` later repaints it (the
    ``region`` that the redraw changed, when given).

    Any event that reaches the view in between (a wheel zoom, a drag, a key, a resize) ends the
    wait first: the view gets its update mode back before the event is handled, so what the
    event changes is repainted as usual, and no change outside ``region`` is dropped.
    """

    def __init__(self, callback: Callable[[], None], max_hz: float = REFRESH_HZ,
                 parent: QObject | None = None,
                 scheduler: RefreshScheduler | None = None,
                 view: QGraphicsView | None = None,
                 region: Callable[[], QRectF | None] | None = None) -> None:
        super().__init__(parent)
        self._callback = callback
        self._scheduler = scheduler or RefreshScheduler.shared()
        self.min_interval = 1.0 / max_hz
        self.last_redraw = -math.inf
        self._dirty = False
        self.redraws = 0
        self._view = view
        #: The scene rectangle that a redraw changed (one plot of several in the view), or
        #: None for the whole view; without it the whole view is repainted.
        self._region = region
        self._paint_timer: QTimer | None = None
        self._waiting = False  # the view ignores the scene until the paint timer fires
        if view is not None:
            self._update_mode = view.viewportUpdateMode()
            self._paint_timer = QTimer(self)
            self._paint_timer.setSingleShot(True)
            self._paint_timer.setInterval(PAINT_DELAY_MS)
            self._paint_timer.timeout.connect(self._paint)

    def mark_dirty(self) -> None:
        self._dirty = True
        self._scheduler.request(self)

    def flush(self) -> None:
        """Redraw now if anything changed (tests and image export use it)."""
        self._scheduler.cancel(self)
        self._fire()
        self._paint()

    def _fire(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.last_redraw = time.monotonic()
        self.redraws += 1
        if self._paint_timer is None:
            self._callback()
            return
        self._view.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.NoViewportUpdate)
        self._waiting = True
        try:
            self._callback()
        finally:
            for widget in (self._view, self._view.viewport()):
                widget.installEventFilter(self)
            self._paint_timer.start()

    def eventFilter(self, _obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        """While a repaint is pending, input or a resize of the view ends the wait."""
        if self._waiting and event.type() in _ENDS_THE_WAIT:
            self._paint()
        return False

    def _paint(self) -> None:
        """Give the view back its update mode and repaint it, if a redraw left it waiting."""
        if self._paint_timer is None or not self._waiting:
            return
        self._waiting = False
        self._paint_timer.stop()
        if not shiboken6.isValid(self._view):  # closed meanwhile: nothing to repaint
            return
        for widget in (self._view, self._view.viewport()):
            widget.removeEventFilter(self)
        self._view.setViewportUpdateMode(self._update_mode)
        rect = self._region() if self._region is not None else None
        if rect is None:
            self._view.viewport().update()
        else:
            self._view.viewport().update(
                self._view.mapFromScene(rect).boundingRect().adjusted(-2, -2, 2, 2))
