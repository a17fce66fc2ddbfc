"""The items that keep the plots' paints cheap draw what pyqtgraph's own items draw."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QRectF

from explorer.latent.map_items import DensityImageItem
from explorer.panels.paint import QuickAxis


def _render(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB32)
    ptr = image.constBits()
    return np.frombuffer(ptr, np.uint8, image.sizeInBytes()).reshape(image.height(), -1)[:, : image.width() * 4].copy()


def _settled(qtbot, widget) -> np.ndarray:
    """The widget's picture once two grabs in a row agree (an axis widens to fit its labels
    after its first paint, and a busy machine delays the relayout)."""
    last = _render(widget)
    for _ in range(50):
        qtbot.wait(20)
        now = _render(widget)
        if np.array_equal(now, last):
            return now
        last = now
    return last


def _plot(qtbot, axis_items=None) -> pg.PlotWidget:
    w = pg.PlotWidget(axisItems=axis_items)
    qtbot.addWidget(w)
    w.resize(420, 320)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.mark.parametrize("ranges", [((0, 1), (0, 1)), ((-3.7, 12.2), (1e-3, 2e-3)), ((-250, 250), (90, 120))])
def test_the_quick_axis_draws_what_pyqtgraphs_axis_draws(qtbot, ranges):
    images = []
    for axes in (None, {name: QuickAxis(name) for name in ("left", "bottom")}):
        w = _plot(qtbot, axes)
        w.setLabel("bottom", "z0")
        w.setLabel("left", "z1")
        w.setRange(xRange=ranges[0], yRange=ranges[1], padding=0)
        images.append(_settled(qtbot, w))
    assert np.array_equal(images[0], images[1])


def test_the_quick_axis_follows_a_new_range(qtbot):
    # Drawn from what pyqtgraph marks stale: a new range gives new ticks, not the old picture.
    w = _plot(qtbot, {name: QuickAxis(name) for name in ("left", "bottom")})
    w.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
    before = _settled(qtbot, w)
    w.setRange(xRange=(100, 900), yRange=(0, 1), padding=0)
    after = _settled(qtbot, w)
    stock = _plot(qtbot)
    stock.setRange(xRange=(100, 900), yRange=(0, 1), padding=0)
    assert not np.array_equal(before, after)
    assert np.array_equal(after, _settled(qtbot, stock))


def test_the_density_item_draws_what_an_image_item_draws(qtbot):
    rng = np.random.default_rng(0)
    ny, nx = 30, 40
    rgba = rng.integers(0, 256, (ny, nx, 4), dtype=np.uint8)
    rgba[:5, :, 3] = 0  # transparent and opaque bins too
    rgba[5:10, :, 3] = 255
    rect = QRectF(-2.0, 1.0, 8.0, 3.0)
    images, views = [], []
    for make in ("image", "density"):
        w = _plot(qtbot)
        if make == "image":
            item = pg.ImageItem(axisOrder="row-major")
            item.setImage(rgba, autoLevels=False, levels=None)
            item.setRect(rect)
        else:
            item = DensityImageItem()
            item.set_image(rgba, rect)
        w.addItem(item)
        w.setRange(xRange=(-3, 7), yRange=(0, 5), padding=0)
        images.append(_settled(qtbot, w).reshape(w.height(), w.width(), 4).astype(int))
        views.append(w)
    # Each bin, at its centre (its edges may fall a pixel apart): the same colour, to one grey
    # level (premultiplied once instead of on every paint), and row 0 at the lowest y.
    vb = views[1].getPlotItem().getViewBox()
    for row in range(0, ny, 3):
        for col in range(0, nx, 3):
            x = rect.x() + (col + 0.5) * rect.width() / nx
            y = rect.y() + (row + 0.5) * rect.height() / ny
            p = views[1].mapFromScene(vb.mapViewToScene(pg.Point(x, y)))
            a, b = images[0][p.y(), p.x()], images[1][p.y(), p.x()]
            assert np.abs(a - b).max() <= 1, (row, col, a, b)
    assert DensityImageItem().boundingRect() == QRectF()  # nothing set: no area


class _PaintOrder(pg.QtCore.QObject):
    """Records "paint" for each paint event of the object it filters."""

    def __init__(self, log: list) -> None:
        super().__init__()
        self.log = log

    def eventFilter(self, _obj, event):  # noqa: N802 (Qt's name)
        if event.type() == event.Type.Paint:
            self.log.append("paint")
        return False


@pytest.mark.parametrize("deferred", [True, False])
def test_a_timer_due_during_a_redraw_runs_before_the_repaint(qtbot, deferred):
    # Qt paints on a posted event, and posted events run before timers that came due
    # meanwhile: a redraw and its paint were one stall of the event loop. With the view given
    # to the throttle, a timer due during the redraw (input, the next frame) runs between them.
    import time

    from PySide6.QtCore import QTimer, Qt

    from explorer.panels.refresh import RefreshScheduler, RefreshThrottle

    w = _plot(qtbot)
    curve = w.plot([0, 1], [0, 1])
    qtbot.wait(50)
    log: list[str] = []
    order = _PaintOrder(log)
    w.viewport().installEventFilter(order)
    due = QTimer()
    due.setTimerType(Qt.TimerType.PreciseTimer)
    due.setSingleShot(True)
    due.timeout.connect(lambda: log.append("timer"))

    def redraw() -> None:
        due.start(1)
        curve.setData([0, 1, 2], [1, 0, 1])
        time.sleep(0.01)  # a redraw's work: the timer comes due during it
        log.append("redraw")

    scheduler = RefreshScheduler()
    throttle = RefreshThrottle(redraw, scheduler=scheduler, view=w if deferred else None)
    throttle.mark_dirty()
    qtbot.waitUntil(lambda: "paint" in log and "timer" in log, timeout=2000)
    first = log[log.index("redraw") + 1]
    if deferred:
        assert first == "timer"
        assert w.viewportUpdateMode() == w.ViewportUpdateMode.MinimalViewportUpdate  # given back
    else:  # what the view alone does: the paint first (so the test can tell the two apart)
        assert first == "paint"
    w.viewport().removeEventFilter(order)


class _PaintedRegions(pg.QtCore.QObject):
    """Collects the viewport rectangles that its object's paint events repaint."""

    def __init__(self) -> None:
        super().__init__()
        self.rects: list = []

    def eventFilter(self, _obj, event):  # noqa: N802 (Qt's name)
        if event.type() == event.Type.Paint:
            self.rects.extend(event.region())
        return False


def test_a_zoom_while_another_plots_repaint_is_pending_is_repainted(qtbot):
    # A redraw of one plot of a view leaves the view ignoring scene changes until its repaint
    # (a millisecond later). A wheel zoom on the other plot in that window was dropped: that
    # plot stayed as it was until something repainted it (after a run, the next interaction).
    from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from explorer.panels.refresh import RefreshScheduler, RefreshThrottle

    w = pg.GraphicsLayoutWidget()
    qtbot.addWidget(w)
    w.resize(420, 480)
    top, bottom = w.addPlot(row=0, col=0), w.addPlot(row=1, col=0)
    curve = top.plot([0, 1], [0, 1])
    bottom.plot([0, 1, 2], [2, 0, 1])
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(50)
    painted = _PaintedRegions()
    w.viewport().installEventFilter(painted)
    where = w.mapFromScene(bottom.vb.sceneBoundingRect().center())
    before = bottom.vb.viewRange()

    def zoom_bottom() -> None:  # input that arrives while the top plot's repaint is pending
        painted.rects.clear()
        event = QWheelEvent(QPointF(where), QPointF(w.viewport().mapToGlobal(where)), QPoint(0, 0),
                            QPoint(0, 120), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                            Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(w.viewport(), event)

    def redraw() -> None:
        curve.setData([0, 1, 2], [1, 0, 1])
        QTimer.singleShot(0, zoom_bottom)  # runs before the throttle's paint timer

    throttle = RefreshThrottle(redraw, scheduler=RefreshScheduler(), view=w,
                               region=top.sceneBoundingRect)
    throttle.mark_dirty()
    qtbot.waitUntil(lambda: bottom.vb.viewRange() != before, timeout=2000)  # it zoomed
    qtbot.wait(100)
    # The zoomed plot's axes too: their ticks follow the new range (its view box alone is
    # repainted anyway, by pyqtgraph's transform update at the next paint).
    for name in ("left", "bottom"):
        axis = w.mapFromScene(bottom.getAxis(name).sceneBoundingRect().center())
        assert any(r.contains(axis) for r in painted.rects), (name, axis, painted.rects)
    w.viewport().removeEventFilter(painted)


def test_both_axes_of_the_plane_move_in_one_range_change(qtbot):
    from explorer.panels.common import SettledRange, update_ranges

    w = _plot(qtbot)
    plot, vb = w.getPlotItem(), w.getPlotItem().getViewBox()
    data = {"x": (0.0, 10.0), "y": (100.0, 200.0)}
    x = SettledRange(plot, "x", lambda: data["x"], padding=0.0)
    y = SettledRange(plot, "y", lambda: data["y"], padding=0.0)
    changes = []
    vb.sigRangeChanged.connect(lambda *_a: changes.append([tuple(r) for r in vb.viewRange()]))
    assert update_ranges(x, y)
    assert len(changes) == 1
    (x0, x1), (y0, y1) = changes[0]
    assert x0 < 0 < 10 < x1 and y0 < 100 < 200 < y1
    assert not update_ranges(x, y)  # the data still fit: no change
    data["y"] = (100.0, 400.0)  # only y leaves the view
    assert update_ranges(x, y) and len(changes) == 2
    assert changes[1][0] == pytest.approx(changes[0][0])  # x stayed
    assert changes[1][1][1] > 400
    vb.sigRangeChangedManually.emit([True, False])  # the user zoomed x: only y stays ours
    data["x"], data["y"] = (50.0, 60.0), (100.0, 900.0)
    assert update_ranges(x, y)
    assert changes[-1][0] == pytest.approx(changes[0][0]) and changes[-1][1][1] > 900
