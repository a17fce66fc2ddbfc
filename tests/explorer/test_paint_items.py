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
