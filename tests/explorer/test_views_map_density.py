"""The map draws a crowded view as a density image and a sparse one point by point; anchors,
clicks and the highlight work the same in both."""

from __future__ import annotations

import numpy as np
import pytest
from latent_helpers import export_vae_decoder
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

import explorer.latent.map_items as map_items
import explorer.latent.map_view as map_view
from explorer.latent.map_items import label_colour
from explorer.latent.map_view import LatentMapView
from explorer.latent.model import LatentSpace
from models.io.onnx_runtime import OnnxDecoder


@pytest.fixture(scope="module")
def decoder_path(tmp_path_factory):
    return export_vae_decoder(tmp_path_factory.mktemp("dec") / "vae.onnx", latent_dim=3)


@pytest.fixture
def crowded(monkeypatch):
    monkeypatch.setattr(map_view, "DENSITY_MIN_POINTS", 1500)  # a small cloud counts as crowded


@pytest.fixture
def map_(qtbot, decoder_path, crowded):
    space = LatentSpace(OnnxDecoder(decoder_path), n_prior=100)
    rng = np.random.default_rng(0)
    means = rng.standard_normal((4000, 3)).astype(np.float32)
    labels = (means[:, 0] > 0).astype(np.int64)  # label 1 on the right half only
    space.set_encodings(means, labels=labels)
    m = LatentMapView(space)
    qtbot.addWidget(m)
    m.resize(500, 450)
    m.show()
    qtbot.waitExposed(m)
    qtbot.wait(30)
    return m


def view_centre(m):
    (x0, x1), (y0, y1) = m.getPlotItem().getViewBox().viewRange()
    return (x0 + x1) / 2, (y0 + y1) / 2


def test_a_crowded_view_is_a_density_image_and_a_zoomed_one_the_scatter(qtbot, map_):
    vb = map_.getPlotItem().getViewBox()
    assert map_.showing_density and not map_.scatter.isVisible()
    image = map_.density.image
    alpha = image[..., 3]
    # Every point is in one bin, and a bin is as opaque as its points overlaid.
    assert alpha.max() > alpha[alpha > 0].min()
    # Colours: a bin holding only right-half points has label 1's colour.
    key = map_._density_key
    x0, y0, bw, bh = key[:4]
    right = map_.space.points[map_.space.points[:, 0] > 0.5][0]
    ix, iy = int((right[0] - x0) / bw), int((right[1] - y0) / bh)
    want = np.array(label_colour(1, 2).getRgb()[:3])
    np.testing.assert_allclose(image[iy, ix, :3], want, atol=2)
    # Zoom far in: few points in view, drawn one by one.
    vb.scaleBy((0.08, 0.08))
    qtbot.wait(20)
    assert map_.scatter.isVisible() and not map_.showing_density
    vb.scaleBy((1 / 0.08, 1 / 0.08))
    qtbot.wait(20)
    assert map_.showing_density


def test_panning_and_small_zooms_reuse_the_image(qtbot, map_):
    vb = map_.getPlotItem().getViewBox()
    bins = map_.density_bins
    (x0, x1), _ = vb.viewRange()
    for _ in range(5):
        vb.translateBy(x=0.04 * (x1 - x0))
        vb.scaleBy((0.97, 0.97))
    qtbot.wait(20)
    assert map_.density_bins == bins  # moved and scaled, not binned again
    for _ in range(12):
        vb.scaleBy((0.97, 0.97))
    assert map_.density_bins == bins  # coarser while zooming...
    qtbot.waitUntil(lambda: map_.density_bins > bins, timeout=2000)  # ...crisp once at rest
    key = map_._density_key
    size = map_items.point_size(len(map_.space.points))
    assert key[2] == pytest.approx(vb.viewPixelSize()[0] * size, rel=0.05)  # a symbol's size again


def test_anchors_and_clicks_work_over_the_density_image(qtbot, map_):
    assert map_.showing_density
    space = map_.space
    vb = map_.getPlotItem().getViewBox()
    vp = map_.viewport()

    def px(x, y):
        return map_.mapFromScene(vb.mapViewToScene(QPointF(x, y)))

    # Drag anchor A1 (a TargetItem) by 60 pixels.
    ax, ay = space.anchor_position(0)
    p0 = px(ax, ay)
    p1 = p0 + pg_point(60, 0)
    QTest.mouseMove(vp, p0)
    qtbot.wait(15)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    for k in range(1, 7):
        QTest.mouseMove(vp, p0 + pg_point(10 * k, 0))
        qtbot.wait(15)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p1)
    qtbot.wait(20)
    nx, _ny = space.anchor_position(0)
    assert nx - ax == pytest.approx(60 * vb.viewPixelSize()[0], rel=0.2)
    # Click a data point far from the anchors: it is found and highlighted.
    k = int(np.argmin(np.abs(space.points[:, 0] + 1.5) + np.abs(space.points[:, 1] + 1.5)))
    with qtbot.waitSignal(map_.pointClicked, timeout=2000) as blocker:
        QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         px(*space.points[k]))
    assert blocker.args == [k] or map_.nearest_point(QPointF(*space.points[k])) == blocker.args[0]
    assert len(map_.highlight.data) == 1


def test_a_new_projection_fits_the_cloud_while_the_density_image_is_shown(qtbot, map_):
    assert map_.showing_density
    space = map_.space
    space.set_projection_pca()
    (x0, x1), (y0, y1) = map_.getPlotItem().getViewBox().viewRange()
    pts = space.points
    span = pts[:, 0].max() - pts[:, 0].min()
    assert x0 <= pts[:, 0].min() and x1 >= pts[:, 0].max()
    assert x1 - x0 < 1.3 * span  # fitted to the cloud, not to a stale or default range


def test_the_scatter_alone_when_density_is_off(qtbot, map_):
    map_.density_enabled = False
    map_._update_density()
    assert map_.scatter.isVisible() and not map_.showing_density


def pg_point(x, y):
    from PySide6.QtCore import QPoint

    return QPoint(x, y)


def test_a_zoom_step_paints_the_map_once(qtbot, map_):
    # pyqtgraph moved the items to a new range only while painting, which asked for a second
    # paint of the same view: two per zoom step (half the zoom frame time, issue 15).
    from PySide6.QtCore import QEvent, QObject

    class Paints(QObject):
        n = 0

        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if event.type() == QEvent.Type.Paint:
                Paints.n += 1
            return False

    vb = map_.getPlotItem().getViewBox()
    counter = Paints()
    map_.viewport().installEventFilter(counter)
    qtbot.wait(50)
    steps = 12
    for k in range(steps):
        before = Paints.n
        vb.scaleBy((0.97, 0.97) if k < steps // 2 else (1 / 0.97, 1 / 0.97))
        qtbot.waitUntil(lambda b=before: Paints.n > b, timeout=2000)
        qtbot.wait(30)  # anything the paint asked for comes now
    map_.viewport().removeEventFilter(counter)
    assert Paints.n <= steps + 2  # the density image may be binned anew once at rest


def test_the_legend_is_drawn_once_not_on_every_zoom_step(map_):
    from PySide6.QtWidgets import QGraphicsItem

    assert map_.legend.items
    for sample, label in map_.legend.items:
        for item in (sample, label, label.item):
            assert item.cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache


def test_only_the_left_and_bottom_axes_are_drawn(map_):
    # pyqtgraph shows every axis item it is given: the top and right ones must stay hidden
    # (drawing them doubled the axes' share of a zoom frame).
    plot = map_.getPlotItem()
    assert plot.getAxis("left").isVisible() and plot.getAxis("bottom").isVisible()
    assert not plot.getAxis("top").isVisible() and not plot.getAxis("right").isVisible()


def test_the_highlight_is_not_drawn_until_a_point_is_shown(map_):
    assert not map_.highlight.isVisible()  # an empty scatter still cost a paint each frame
    map_.show_point(3)
    assert map_.highlight.isVisible()
    np.testing.assert_allclose(map_.highlight.getData()[0], [map_.space.points[3, 0]])
    map_.show_point(None)
    assert not map_.highlight.isVisible()


def test_the_crowded_count_matches_a_plain_count_of_the_points_in_view(map_):
    pts = map_.space.points
    x, y = pts[:, 0], pts[:, 1]
    rng = np.random.default_rng(1)
    for _ in range(300):  # random views, nested and not, so both short cuts are taken too
        cx, cy = rng.normal(0, 0.5, 2)
        half = rng.uniform(0.05, 3.0, 2)
        view = (cx - half[0], cx + half[0], cy - half[1], cy + half[1])
        inside = np.count_nonzero((x >= view[0]) & (x <= view[1]) & (y >= view[2]) & (y <= view[3]))
        assert map_._crowded(view) == (inside >= map_view.DENSITY_MIN_POINTS), view
