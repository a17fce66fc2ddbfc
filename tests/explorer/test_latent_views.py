"""The latent explorer's views with real ONNX decoders: drags, anchors, strip, traversal, PNGs.

Drags are QTest mouse events on the map's viewport (press on the anchor, moves, release), so they
go through pyqtgraph's scene and the TargetItem exactly as a user's would. Every decoded image is
compared with what the decoder itself returns for the latent the model holds.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from latent_helpers import export_vae_decoder, third_party_decoder
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest

from explorer.latent.model import LatentSpace
from explorer.latent.widget import LatentExplorerWidget
from models.latent import geometry as lm
from models.io.onnx_runtime import OnnxDecoder


@pytest.fixture(scope="module")
def decoder_path(tmp_path_factory):
    # z1 and z3 feed nothing into the decoder: collapsed by construction.
    path = tmp_path_factory.mktemp("dec") / "vae.onnx"
    return export_vae_decoder(path, latent_dim=4, dead_dims=(1, 3))


@pytest.fixture
def explorer(qtbot, decoder_path):
    space = LatentSpace(OnnxDecoder(decoder_path), n_prior=500)
    w = LatentExplorerWidget(space)
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    qtbot.waitExposed(w)
    w.renderer.settle()
    qtbot.wait(30)
    return w


def expected_uint8(decoder, z):
    """What the views must show for latents z: the decoder's own display-ready bytes."""
    x = decoder.decode(np.atleast_2d(z))
    return (x * 255.0 + 0.5).astype(np.uint8).reshape(len(x), *decoder.image_shape)


def to_widget(map_view, x, y) -> QPoint:
    """Viewport pixel of view coordinates (x, y) on the map."""
    vb = map_view.getPlotItem().getViewBox()
    return map_view.mapFromScene(vb.mapViewToScene(QPointF(x, y)))


def drag(qtbot, map_view, start, end, steps=6):
    """Press at view point ``start``, move in ``steps`` to ``end``, release: a user's drag."""
    qtbot.wait(30)  # let pending layout settle: pixel positions depend on the widget's size
    vp = map_view.viewport()
    p0, p1 = to_widget(map_view, *start), to_widget(map_view, *end)
    QTest.mouseMove(vp, p0)
    qtbot.wait(15)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    for k in range(1, steps + 1):
        t = k / steps
        p = QPoint(round(p0.x() + t * (p1.x() - p0.x())), round(p0.y() + t * (p1.y() - p0.y())))
        QTest.mouseMove(vp, p)
        qtbot.wait(15)  # pyqtgraph ignores moves closer than 10 ms (mouseRateLimit)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p1)
    qtbot.wait(20)


def double_click(vp, p):
    """What a mouse sends for a double-click: press, release, double-click, release."""
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(vp, left, none, p)
    QTest.mouseRelease(vp, left, none, p)
    QTest.mouseDClick(vp, left, none, p)
    QTest.mouseRelease(vp, left, none, p)


def pixel_size(map_view):
    return map_view.getPlotItem().getViewBox().viewPixelSize()


# --------------------------------------------------------------------------- anchors
def test_dragging_an_anchor_decodes_the_new_latent(qtbot, explorer):
    space, r, dec = explorer.space, explorer.renderer, explorer.space.decoder
    space.set_current_anchor(1)
    r.settle()
    start = space.anchor_position(1)
    hidden = [d for d in range(4) if d not in (space.projection.x_dim, space.projection.y_dim)]
    hidden_before = space.anchor(1)[hidden]
    before = r.anchor_image.copy()
    frames = r.frames
    target = (start[0] - 1.5, start[1] + 1.0)
    drag(qtbot, explorer.map, start, target)
    qtbot.waitUntil(lambda: r.frames > frames)
    r.settle()

    x, y = space.anchor_position(1)
    px, py = pixel_size(explorer.map)
    assert abs(x - target[0]) <= 2 * px and abs(y - target[1]) <= 2 * py
    z = space.anchor(1)
    np.testing.assert_array_equal(z[hidden], hidden_before)  # hidden dims kept
    assert space.current_anchor == 1
    want = expected_uint8(dec, z)[0]
    np.testing.assert_array_equal(r.anchor_image, want)
    np.testing.assert_array_equal(explorer.anchor_view.item.image, want)  # what is on screen
    assert not np.array_equal(before, want)


def test_a_drag_updates_the_image_while_moving_not_only_at_release(qtbot, explorer):
    space, r = explorer.space, explorer.renderer
    space.set_current_anchor(0)
    r.settle()
    start = space.anchor_position(0)
    vp = explorer.map.viewport()
    p0 = to_widget(explorer.map, *start)
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p0)
    seen = []
    for k in range(1, 6):
        QTest.mouseMove(vp, QPoint(p0.x() + 12 * k, p0.y()))
        qtbot.wait(40)  # longer than a display frame: the throttle lets each through
        seen.append((r.frames, float(space.anchor(0)[0])))
    # Still pressed: every move has been decoded already, each at the anchor's latent of the time.
    assert len({f for f, _ in seen}) == 5
    np.testing.assert_array_equal(r.anchor_image, expected_uint8(space.decoder, space.anchor(0))[0])
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       QPoint(p0.x() + 60, p0.y()))


def test_bursts_of_moves_are_coalesced_to_the_display_rate(qtbot, explorer):
    space, r = explorer.space, explorer.renderer
    r.throttle.interval_ms = 50.0
    r.settle()
    frames = r.frames
    x, y = space.anchor_position(0)
    for k in range(40):  # 40 moves within one pass of the event loop
        space.move_anchor(0, (x + 0.01 * k, y))
    qtbot.wait(120)
    assert 1 <= r.frames - frames <= 3
    np.testing.assert_array_equal(r.anchor_image, expected_uint8(space.decoder, space.anchor(0))[0])


def test_double_click_adds_an_anchor_there_and_delete_removes_it(qtbot, explorer):
    space, m = explorer.space, explorer.map
    base = space.anchor(space.current_anchor)
    hidden = [d for d in range(4) if d not in (space.projection.x_dim, space.projection.y_dim)]
    qtbot.wait(30)
    vp = m.viewport()
    p = to_widget(m, 1.25, -0.75)
    double_click(vp, p)
    qtbot.waitUntil(lambda: space.n_anchors == 3)
    assert space.current_anchor == 2 and len(m.anchors) == 3
    x, y = space.anchor_position(2)
    px, py = pixel_size(m)
    assert abs(x - 1.25) <= 2 * px and abs(y + 0.75) <= 2 * py
    np.testing.assert_array_equal(space.anchor(2)[hidden], base[hidden])  # hidden dims inherited
    explorer.renderer.settle()
    np.testing.assert_array_equal(
        explorer.renderer.anchor_image, expected_uint8(space.decoder, space.anchor(2))[0]
    )

    m.setFocus()
    QTest.keyClick(m, Qt.Key.Key_Delete)
    assert space.n_anchors == 2 and len(m.anchors) == 2


def test_context_menu_removes_an_anchor_but_never_the_last(qtbot, explorer):
    space, m = explorer.space, explorer.map
    menu = m.anchor_menu(0)
    remove = menu.actions()[0]
    assert remove.isEnabled()
    remove.trigger()
    assert space.n_anchors == 1 and len(m.anchors) == 1
    assert not m.anchor_menu(0).actions()[0].isEnabled()
    assert space.remove_anchor(0) is False
    explorer.renderer.settle()
    assert explorer.renderer.strip_images.shape[0] == 1  # one anchor: the strip is that image


def test_add_button_and_slider_change_the_current_anchor(qtbot, explorer):
    space, r = explorer.space, explorer.renderer
    qtbot.mouseClick(explorer.add_button, Qt.MouseButton.LeftButton)
    assert space.n_anchors == 3 and space.current_anchor == 2
    explorer.sliders.set_value(2, 1.75)
    r.settle()
    z = space.anchor(2)
    assert z[2] == pytest.approx(1.75)
    np.testing.assert_array_equal(r.anchor_image, expected_uint8(space.decoder, z)[0])
    # The slider of a map axis moves the anchor on the map too.
    x_dim = space.projection.x_dim
    explorer.sliders.set_value(x_dim, -2.0)
    item = explorer.map.anchors[2]
    assert item.pos().x() == pytest.approx(-2.0)


def test_clicking_a_point_shows_it_decoded(qtbot, explorer):
    space, m = explorer.space, explorer.map
    k = 7
    x, y = (float(v) for v in space.points[k])
    m.getPlotItem().getViewBox().setRange(xRange=(x - 0.05, x + 0.05), yRange=(y - 0.05, y + 0.05))
    qtbot.wait(20)
    QTest.mouseClick(m.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     to_widget(m, x, y))
    qtbot.waitUntil(lambda: explorer.sample_view.index == k)
    shown = explorer.sample_view.image
    want = expected_uint8(space.decoder, space.latents[k])[0]
    np.testing.assert_array_equal(shown, want)  # no data rows: the decoded prior draw alone


def test_a_decoder_failing_on_a_clicked_point_is_one_message(explorer, monkeypatch):
    from models.errors import ModelFileError

    def broken(_z):
        raise ModelFileError("decoder.onnx: onnxruntime failed")

    monkeypatch.setattr(explorer.space.decoder, "decode_uint8", broken)
    messages = []
    explorer.error.connect(messages.append)
    explorer.map.pointClicked.emit(3)  # no exception escapes the slot
    assert messages == ["decoder.onnx: onnxruntime failed"]


# --------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("mode", ["linear", "spherical"])
def test_strip_is_the_decoded_path_through_all_anchors(qtbot, explorer, mode):
    space, r = explorer.space, explorer.renderer
    space.add_anchor(z=np.array([0.5, 0.0, -2.0, 0.0], np.float32))
    space.set_mode(mode)
    space.set_steps(5)
    r.settle()
    anchors = space.anchors
    path = lm.interpolate_path(anchors, 5, mode)
    np.testing.assert_array_equal(r.path, path)
    want = expected_uint8(space.decoder, path)
    np.testing.assert_array_equal(r.strip_images, want)
    # The strip shown is those images side by side, anchors at rows 0, 4, 8.
    h, w = want.shape[1:3]
    assert r.strip.shape == (h, 9 * (w + 1) - 1)
    for i in range(9):
        np.testing.assert_array_equal(r.strip[:, i * (w + 1) : i * (w + 1) + w], want[i])
    for k, row in enumerate(space.anchor_rows()):
        np.testing.assert_array_equal(r.strip_images[row], expected_uint8(space.decoder, anchors[k])[0])
    np.testing.assert_array_equal(explorer.strip_view.item.image, r.strip)


def test_spherical_and_linear_paths_differ_between_the_same_anchors(explorer):
    space, r = explorer.space, explorer.renderer
    space.set_anchor_latent(0, np.array([2.0, 0.0, 0.0, 0.0], np.float32))
    space.set_anchor_latent(1, np.array([0.0, 0.0, 2.0, 0.0], np.float32))
    space.set_steps(3)
    r.settle()
    mid_linear = r.path[1].copy()
    space.set_mode("spherical")
    r.settle()
    np.testing.assert_allclose(mid_linear, [1, 0, 1, 0])
    np.testing.assert_allclose(r.path[1], [np.sqrt(2), 0, np.sqrt(2), 0], atol=1e-6)


def test_settings_bar_shows_settings_changed_from_code(explorer):
    space, bar = explorer.space, explorer.settings
    space.set_projection_pca()
    assert bar.projection.currentText() == "PCA" and not bar.x_dim.isEnabled()
    space.set_steps(7)
    space.set_mode("spherical")
    space.set_traversal(columns=5, limit=2.0)
    assert bar.steps.value() == 7
    assert bar.mode.currentText() == "spherical"
    assert (bar.columns.value(), bar.limit.value()) == (5, 2.0)


def test_strip_follows_a_drag(qtbot, explorer):
    space, r = explorer.space, explorer.renderer
    start = space.anchor_position(1)
    drag(qtbot, explorer.map, start, (start[0], start[1] - 1.0))
    r.settle()
    np.testing.assert_array_equal(r.strip_images, expected_uint8(space.decoder, space.path_latents()))
    xy = space.projection.project(r.path)
    np.testing.assert_allclose(explorer.map.path_curve.getData()[0], xy[:, 0], rtol=1e-5)


# --------------------------------------------------------------------------- traversal
def test_traversal_rows_of_collapsed_dims_are_constant(qtbot, explorer):
    space, r = explorer.space, explorer.renderer
    space.set_traversal(columns=7, limit=3.0)
    r.settle()
    dims, values = r.grid_dims, r.grid_values
    np.testing.assert_allclose(values, np.linspace(-3, 3, 7))
    imgs = r.grid_images.reshape(len(dims), 7, *r.grid_images.shape[1:])
    np.testing.assert_array_equal(
        r.grid_images, expected_uint8(space.decoder, space.traversal_latents())
    )
    for row, d in enumerate(dims):
        constant = all(np.array_equal(imgs[row, 0], imgs[row, c]) for c in range(7))
        assert constant == (d in (1, 3)), f"z{d}"
    assert r.grid.shape[0] == len(dims) * (imgs.shape[2] + 1) - 1


def test_traversal_orders_rows_by_kl_and_marks_collapse(qtbot, explorer):
    space, r = explorer.space, explorer.renderer
    rng = np.random.default_rng(0)
    n = 300
    # Encodings whose KL is largest for z2, then z0; z1 and z3 have means fixed at 0 (collapsed).
    means = np.stack([rng.normal(0, 1.0, n), np.zeros(n), rng.normal(0, 2.0, n), np.zeros(n)], 1)
    logvar = np.log(np.tile([0.2, 1.0, 0.05, 1.0], (n, 1)))
    space.set_encodings(means, logvar, labels=rng.integers(0, 3, n))
    r.settle()
    assert list(r.grid_dims) == [2, 0, 1, 3]
    assert (space.projection.x_dim, space.projection.y_dim) == (2, 0)  # the two with most KL
    labels = explorer.traversal_view.row_labels()
    assert labels[0].startswith("z2") and "collapsed" not in labels[0]
    assert "collapsed" in labels[2] and "collapsed" in labels[3]
    kl = lm.kl_per_dim(means, logvar)
    assert f"{kl[2]:.2f}" in labels[0]


def test_traversal_follows_the_current_anchor_after_the_drag(qtbot, explorer):
    space, r = explorer.space, explorer.renderer
    space.set_current_anchor(0)
    r.settle()
    before = r.traversals
    start = space.anchor_position(0)
    drag(qtbot, explorer.map, start, (start[0] + 1.0, start[1] + 0.5))
    qtbot.waitUntil(lambda: r.traversals > before)  # the drag's release settles it
    np.testing.assert_array_equal(
        r.grid_images, expected_uint8(space.decoder, space.traversal_latents())
    )
    np.testing.assert_array_equal(r.grid_images.reshape(len(r.grid_dims), -1, *r.grid_images.shape[1:])[0, 0],
                                  expected_uint8(space.decoder, lm.traversal_latents(
                                      space.anchor(0), r.grid_dims, r.grid_values)[:1])[0])


# --------------------------------------------------------------------------- PNG
def test_image_views_hug_their_images_so_labels_sit_next_to_them(qtbot, explorer):
    """The view box has the image's aspect whatever the widget's: axis labels and titles sit at
    the image's edges, not at the widget's with blank bands between."""
    from explorer.latent.image_views import StripView, TraversalView

    for cls, size in ((TraversalView, (1000, 400)), (TraversalView, (500, 1000)),
                      (StripView, (900, 500))):
        view = cls(explorer.space, explorer.renderer)
        qtbot.addWidget(view)
        view.resize(*size)
        view.show()
        qtbot.waitExposed(view)
        explorer.renderer.render_frame()
        explorer.renderer.render_traversal()
        qtbot.wait(50)
        vb = view.plot.getViewBox()
        h, w = view.image.shape[:2]
        shown = vb.mapViewToScene(pg.QtCore.QRectF(0, 0, w, h)).boundingRect()
        box = vb.sceneBoundingRect()
        assert shown.width() >= 0.9 * box.width() and shown.height() >= 0.9 * box.height(), size


def test_strip_and_grid_save_as_png(qtbot, explorer, tmp_path):
    r = explorer.renderer
    r.settle()
    for what, image in (("strip", r.strip), ("grid", r.grid)):
        path = tmp_path / f"{what}.png"
        explorer.save(what, str(path))
        img = QImage(str(path))
        assert not img.isNull()
        # The grid is saved with its labels around it (test_views_latent.py checks them).
        x0, y0 = explorer.traversal_view.saved_origin if what == "grid" else (0, 0)
        scale = 112 // r.strip_images.shape[1]
        assert scale >= 1 and img.width() >= image.shape[1] * scale + x0
        if what == "strip":
            assert img.width() == image.shape[1] * scale and img.height() == image.shape[0] * scale
        img = img.convertToFormat(QImage.Format.Format_Grayscale8)
        arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
        arr = arr[:, : img.width()]
        h, w = image.shape[:2]
        np.testing.assert_array_equal(arr[y0 : y0 + h * scale : scale, x0 : x0 + w * scale : scale], image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "strip.png"]  # no temp files


def test_saving_into_a_missing_folder_is_one_clear_error(explorer, tmp_path):
    from models.errors import ExportError

    with pytest.raises(ExportError, match="folder does not exist"):
        explorer.save("strip", str(tmp_path / "nope" / "strip.png"))


# --------------------------------------------------------------------------- third-party decoder
def test_a_third_party_decoder_without_metadata_works_the_same(qtbot, tmp_path):
    path, w, b = third_party_decoder(tmp_path / "theirs.onnx", latent_dim=3, dead_dims=(2,))
    dec = OnnxDecoder(path)
    space = LatentSpace(dec, n_prior=300)
    view = LatentExplorerWidget(space)
    qtbot.addWidget(view)
    view.show()
    view.renderer.settle()
    assert space.kl_per_dim is None and list(view.renderer.grid_dims) == [0, 1, 2]
    z = space.anchor(0)
    want = 1.0 / (1.0 + np.exp(-(z @ w + b)))
    np.testing.assert_array_equal(
        view.renderer.anchor_image, (want * 255 + 0.5).astype(np.uint8).reshape(4, 4)
    )
    imgs = view.renderer.grid_images.reshape(3, space.traversal_columns, 4, 4)
    assert all(np.array_equal(imgs[2, 0], imgs[2, c]) for c in range(space.traversal_columns))
    assert not np.array_equal(imgs[0, 0], imgs[0, -1])


def test_the_sample_views_placeholder_title_fits_a_narrow_view(qtbot, decoder_path):
    # At 1920 x 1080 the sample view is ~150 px wide: "Click a point on the map" was cut to
    # "Click a point on the r" (the title was fitted only once an image was shown).
    from PySide6.QtGui import QFontMetricsF

    from explorer.latent.image_views import SampleView

    view = SampleView(LatentSpace(OnnxDecoder(decoder_path)))
    qtbot.addWidget(view)
    view.setFixedSize(110, 200)
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(50)
    room = min(view.plot.getViewBox().width(), view.width())
    assert view.title() in ("Click a point on the map", "Click a point") or view.title().endswith("…")
    assert QFontMetricsF(view._title_font()).horizontalAdvance(view.title()) <= room


def test_the_anchor_views_title_is_the_short_name_in_a_narrow_column(qtbot, explorer):
    # At 1366 x 768 the anchor column is ~90 px wide: its title read "Anch…" for "Anchor A3".
    from PySide6.QtGui import QFontMetricsF

    view = explorer.anchor_view
    view.setFixedWidth(70)
    explorer.space.set_current_anchor(explorer.space.n_anchors - 1)
    qtbot.waitUntil(lambda: view.title() == f"A{explorer.space.n_anchors}", timeout=3000)
    room = view.plot.getViewBox().width()
    assert QFontMetricsF(view._title_font()).horizontalAdvance(view.title()) <= room
    view.setFixedWidth(400)
    qtbot.waitUntil(lambda: view.title() == f"Anchor A{explorer.space.n_anchors}", timeout=3000)
