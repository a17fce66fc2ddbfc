"""The latent explorer's views at the sizes a laptop gives them: labels that fit and never run
together, titles that are not cut, a legend that fits the map, axis names that say what they
are, and saved images with labels and the user's file mode."""

from __future__ import annotations

import os

import numpy as np
import pytest
from latent_helpers import export_vae_decoder
from PySide6.QtGui import QImage, QPainter

from explorer.latent.image_files import save_png
from explorer.latent.image_views import SampleView, StripView, TraversalView
from explorer.latent.model import LatentSpace
from explorer.latent.widget import LatentExplorerWidget
from models.io.onnx_runtime import OnnxDecoder


@pytest.fixture(scope="module")
def decoder_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("dec") / "vae.onnx"
    return export_vae_decoder(path, latent_dim=4, dead_dims=(3,))


@pytest.fixture
def space(decoder_path):
    space = LatentSpace(OnnxDecoder(decoder_path), n_prior=300)
    rng = np.random.default_rng(0)
    means = (rng.standard_normal((3000, 4)) * np.array([3.0, 2.0, 1.0, 1.0])).astype(np.float32)
    space.set_encodings(means, np.full_like(means, -2.0), labels=np.arange(3000) % 10,
                        samples=np.zeros((3000, 28 * 28), np.float32))
    return space


@pytest.fixture
def explorer(qtbot, space):
    w = LatentExplorerWidget(space)
    qtbot.addWidget(w)
    w.resize(1200, 700)
    w.show()
    qtbot.waitExposed(w)
    w.renderer.settle()
    return w


def drawn_labels(axis):
    """(rect, text) of the labels ``axis`` paints (pyqtgraph's own layout of them)."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    painter.setFont(axis.style["tickFont"] or axis.font())
    try:
        specs = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _f, text in specs[2]]


def assert_apart(labels):
    rects = sorted((r for r, _t in labels), key=lambda r: r.left())
    for a, b in zip(rects, rects[1:]):
        assert a.right() <= b.left(), [t for _r, t in labels]


def view(qtbot, cls, explorer, size):
    v = cls(explorer.space, explorer.renderer) if cls is not SampleView else cls(explorer.space)
    qtbot.addWidget(v)
    v.resize(*size)
    v.show()
    qtbot.waitExposed(v)
    explorer.renderer.render_frame()
    explorer.renderer.render_traversal()
    qtbot.wait(80)
    return v


def title_fits(v):
    label = v.plot.titleLabel
    text_width = label.item.boundingRect().width()
    return text_width <= label.boundingRect().width() + 1 and text_width <= v.viewport().width()


# --------------------------------------------------------------------------- traversal
@pytest.mark.parametrize("width", [300, 420, 900])
def test_traversal_column_labels_are_thinned_to_what_fits(qtbot, explorer, width):
    explorer.space.set_traversal(columns=9)
    v = view(qtbot, TraversalView, explorer, (width, 500))
    labels = drawn_labels(v.plot.getAxis("bottom"))
    texts = [t for _r, t in labels]
    assert texts[0] == "-3" and texts[-1] == "3", texts  # the ends are always labelled
    assert_apart(labels)
    assert title_fits(v), v.title()
    # Nothing drawn past the widget's right edge: the last column and its label are in view.
    box = v.plot.getViewBox()
    right = box.mapViewToScene(box.viewRect().topRight()).x()
    assert right <= v.viewport().width()
    assert max(r.right() for r, _t in labels) + v.plot.getAxis("bottom").sceneBoundingRect().left() \
        <= v.viewport().width()


def test_strip_title_and_last_anchor_label_fit_with_three_anchors_of_twelve_steps(qtbot, explorer):
    space = explorer.space
    space.add_anchor(z=space.latents[7])
    space.set_steps(12)
    explorer.renderer.settle()
    v = view(qtbot, StripView, explorer, (380, 140))
    assert len(explorer.renderer.strip_images) == 23
    assert title_fits(v), v.title()
    assert "23 images" in v.title()
    texts = [t for _r, t in drawn_labels(v.plot.getAxis("bottom"))]
    assert texts == ["A1", "A2", "A3"]


def test_sample_captions_do_not_overlap(qtbot, explorer):
    v = view(qtbot, SampleView, explorer, (180, 150))
    v.show_point(3)
    qtbot.wait(80)
    labels = drawn_labels(v.plot.getAxis("bottom"))
    assert len(labels) == 2, (labels, v._ticks, v.scale_px, v.plot.getAxis("bottom").sceneBoundingRect(), v.viewport().width())
    assert_apart(labels)


# --------------------------------------------------------------------------- map
def test_pca_axes_give_the_share_of_the_total_variance_and_the_pickers_say_pc1_pc2(explorer):
    space = explorer.space
    space.set_projection_pca()
    x_label, y_label = space.axis_labels()
    # Variances 9, 4, 1, 1 (sum 15): PC1 carries 60% of the total, PC2 27%.
    import re

    shares = [float(re.match(r"PC\d \((\d+)%", t).group(1)) for t in (x_label, y_label)]
    assert shares == pytest.approx([60, 26.7], abs=2.5), (x_label, y_label)
    assert "total variance" in x_label
    s = explorer.settings
    assert not s.x_dim.isEnabled() and s.x_dim.currentIndex() == -1
    assert (s.x_dim.placeholderText(), s.y_dim.placeholderText()) == ("PC1", "PC2")
    s.projection.setCurrentIndex(0)  # back to two dimensions: a valid pair again
    assert space.projection_kind == "dims"
    assert s.x_dim.currentIndex() >= 0 and s.x_dim.currentIndex() != s.y_dim.currentIndex()


def test_map_legend_and_axis_names_fit_a_short_map(qtbot, explorer):
    explorer.space.set_projection_pca()
    m = explorer.map
    m.setMinimumSize(100, 100)
    explorer.splitter.widget(0).setSizes([230, 400])
    qtbot.wait(100)
    vb = m.getPlotItem().getViewBox()
    assert vb.height() < 240
    legend = m.legend.sceneBoundingRect()
    assert legend.bottom() <= vb.sceneBoundingRect().bottom() + 1
    assert len(m.legend.items) == 10
    left = m.getPlotItem().getAxis("left")
    assert left.label.boundingRect().width() <= vb.height() + 1  # the name is not cut
    assert left.labelText.startswith("PC2")


# --------------------------------------------------------------------------- saved images
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_saved_images_get_the_mode_the_umask_gives(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = save_png(np.zeros((4, 4), np.uint8), tmp_path / "a.png", 1)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_saved_grid_has_its_row_and_column_labels(qtbot, explorer, tmp_path):
    r = explorer.renderer
    r.settle()
    path = str(tmp_path / "grid.png")
    explorer.save("grid", path)
    img = QImage(path).convertToFormat(QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
    arr = arr[:, : img.width()]
    v = explorer.traversal_view
    x0, y0 = v.saved_origin
    h, w = r.grid.shape[:2]
    scale = 112 // r.grid_images.shape[1]
    np.testing.assert_array_equal(arr[y0 : y0 + h * scale : scale, x0 : x0 + w * scale : scale], r.grid)
    assert x0 > 20 and img.height() > y0 + h * scale + 20  # room for the labels...
    assert (arr[y0 : y0 + h * scale, : x0 - 2] < 100).any()  # ...and text in it: rows
    assert (arr[y0 + h * scale + 2 :, x0 : x0 + w * scale] < 100).any()  # columns
