"""Views of decoded images: one image, the interpolation strip, the traversal grid, a sample.

Each is a ``pyqtgraph`` plot holding one ``ImageItem`` (row-major, y down, aspect locked, pixels
drawn square without smoothing); a new image goes in with ``setImage`` and the view re-fits only
when the image's size changes. Axis ticks name what the pixels are: the anchors under the strip,
each traversal row's dimension and KL, each column's value.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage

from models.latent import geometry as lm
from models.errors import ExportError

from .model import LatentSpace
from .render import GAP_GREY, LiveRenderer


class ImagePlot(pg.GraphicsLayoutWidget):
    """One uint8 image ([H, W] grey or [H, W, 3] colour) in a plot, pixels square."""

    def __init__(self, title: str = "", parent=None, *, axes: bool = False) -> None:
        super().__init__(parent)
        self.plot = self.addPlot(title=title or None)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        vb = self.plot.getViewBox()
        vb.setAspectLocked(True)
        vb.invertY(True)
        vb.setDefaultPadding(0.0)
        for name in ("left", "bottom"):
            self.plot.showAxis(name, axes)
            axis = self.plot.getAxis(name)
            axis.setStyle(tickLength=0)
            axis.setPen(pg.mkPen(None))  # labels only: the axis line would overhang the image
            axis.setTextPen(pg.mkPen(pg.getConfigOption("foreground")))
        self.item = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.item)
        self.image: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None
        self._title = title
        self._ticks: dict[str, list] = {}
        self.cell_height: int | None = None  # height of one tiled image, when tiled
        self._margins = (0.0, 0.0)
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self._fit)

    def set_image(self, image: np.ndarray) -> None:
        self.image = image
        self.item.setImage(image, autoLevels=False, levels=(0, 255))
        if image.shape != self._shape:
            self._shape = image.shape
            h, w = image.shape[:2]
            self.plot.getViewBox().setRange(xRange=(0, w), yRange=(0, h), padding=0.02)
            self._fit_timer.start()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        timer = getattr(self, "_fit_timer", None)  # pyqtgraph resizes during __init__
        if timer is not None:
            timer.start()

    def _fit(self) -> None:
        """Centre the plot with margins so its view has the image's aspect: the title, the axis
        labels and the image then sit together, not at the widget's edges with the image
        floating in between (an aspect-locked view alone pads the image, not the axes)."""
        if self._shape is None:
            return
        h, w = (s * 1.04 for s in self._shape[:2])  # the view's 2% padding on each side
        vb = self.plot.getViewBox()
        over_w = self.plot.geometry().width() - vb.geometry().width()  # axes, title
        over_h = self.plot.geometry().height() - vb.geometry().height()
        width, height = self.viewport().width() - 2, self.viewport().height() - 2
        scale = min((width - over_w) / w, (height - over_h) / h)
        if scale <= 0:
            return
        mx = max(0.0, (width - over_w - w * scale) / 2)
        my = max(0.0, (height - over_h - h * scale) / 2)
        if abs(mx - self._margins[0]) > 1 or abs(my - self._margins[1]) > 1:
            self._margins = (mx, my)
            self.ci.setContentsMargins(mx, my, mx, my)

    def set_title(self, title: str) -> None:
        """Set the title; unchanged text costs nothing (no relayout, no repaint)."""
        if title != self._title:
            self._title = title
            self.plot.setTitle(title)

    def set_ticks(self, axis: str, ticks: list[tuple[float, str]]) -> None:
        """Label positions along ``axis`` ("bottom" or "left"); unchanged ticks cost nothing."""
        if self._ticks.get(axis) != ticks:
            self._ticks[axis] = ticks
            self.plot.getAxis(axis).setTicks([ticks, []])
            self._fit_timer.start()  # the labels' size changes what is left for the image

    def save_png(self, path: str | os.PathLike, scale: int | None = None) -> str:
        """Save the image shown (not the widget) as PNG; see :func:`save_png`. By default each
        pixel becomes a block sized so that one tiled image is about 112 pixels high."""
        if self.image is None:
            raise ExportError(f"{os.fspath(path)}: nothing decoded yet to save")
        if scale is None:
            scale = default_scale(self.cell_height or self.image.shape[0])
        return save_png(self.image, path, scale)


def default_scale(height: int) -> int:
    """Integer up-scaling so that a small image (28 px) saves at a readable size (~112 px)."""
    return max(1, 112 // max(1, height))


def save_png(image: np.ndarray, path: str | os.PathLike, scale: int | None = None) -> str:
    """Write a uint8 image [H, W] or [H, W, 3] as PNG, each pixel a ``scale`` x ``scale`` block.

    ``scale`` defaults to :func:`default_scale` of the image height. The file is written to a
    temporary name in the same folder and renamed, so a failed save leaves no partial file.
    Raises :class:`ExportError` with one line naming the file.
    """
    path = os.fspath(path)
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ExportError(f"{path}: cannot save an image of shape {img.shape} as PNG")
    if scale is None:
        scale = default_scale(img.shape[0])
    if scale > 1:
        img = np.ascontiguousarray(np.repeat(np.repeat(img, scale, axis=0), scale, axis=1))
    h, w = img.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if img.ndim == 2 else QImage.Format.Format_RGB888
    qimg = QImage(img.data, w, h, img.strides[0], fmt).copy()
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ExportError(f"{path}: the folder does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=folder)
    os.close(fd)
    try:
        if not qimg.save(tmp, "PNG"):
            raise ExportError(f"{path}: could not write the PNG")
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"{path}: could not write the PNG ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _cell(size: int, k: int) -> float:
    """Centre of tile ``k`` along an axis of tiles of ``size`` pixels with one-pixel gaps."""
    return k * (size + 1) + size / 2.0


class AnchorImageView(ImagePlot):
    """The current anchor's decoded image, large."""

    def __init__(self, space: LatentSpace, renderer: LiveRenderer, parent=None) -> None:
        super().__init__("Current anchor", parent)
        self.space = space
        renderer.frameReady.connect(lambda: self._show(renderer))

    def _show(self, renderer: LiveRenderer) -> None:
        if renderer.anchor_image is not None:
            self.set_image(renderer.anchor_image)
            self.set_title(f"Anchor A{self.space.current_anchor + 1}")


class StripView(ImagePlot):
    """The interpolation strip along the path through all anchors, anchors marked below it."""

    def __init__(self, space: LatentSpace, renderer: LiveRenderer, parent=None) -> None:
        super().__init__("Interpolation", parent, axes=True)
        self.space = space
        self.renderer = renderer
        self.plot.hideAxis("left")
        renderer.frameReady.connect(self._show)

    def _show(self) -> None:
        r = self.renderer
        if r.strip is None or r.strip_images is None:
            return
        self.set_image(r.strip)
        self.cell_height = r.strip_images.shape[1]
        w = r.strip_images.shape[2]
        ticks = [(_cell(w, row), f"A{k + 1}") for k, row in enumerate(self.space.anchor_rows())]
        self.set_ticks("bottom", ticks)
        s = self.space
        self.set_title(
            f"{s.mode.capitalize()} interpolation, {s.steps} steps per segment, "
            f"{len(r.strip_images)} images"
        )


class TraversalView(ImagePlot):
    """The traversal grid: a row per dimension (most KL first), a column per value."""

    def __init__(self, space: LatentSpace, renderer: LiveRenderer, parent=None) -> None:
        super().__init__("Traversal", parent, axes=True)
        self.space = space
        self.renderer = renderer
        renderer.traversalReady.connect(self._show)

    def row_labels(self) -> list[str]:
        """One label per row: the dimension, its KL (nats) and a 'collapsed' mark."""
        kl = self.space.kl_per_dim
        collapsed = set(self.space.collapsed_dims)
        labels = []
        for d in self.renderer.grid_dims:
            text = f"z{int(d)}"
            if kl is not None:
                text += f"  {kl[int(d)]:.2f}"
            if int(d) in collapsed:
                text += "  collapsed"
            labels.append(text)
        return labels

    def _show(self) -> None:
        r = self.renderer
        if r.grid is None or r.grid_images is None:
            return
        self.set_image(r.grid)
        h, w = r.grid_images.shape[1:3]
        self.cell_height = h
        left = [(_cell(h, i), text) for i, text in enumerate(self.row_labels())]
        bottom = [(_cell(w, j), f"{v:g}") for j, v in enumerate(r.grid_values)]
        self.set_ticks("left", left)
        self.set_ticks("bottom", bottom)
        kl_known = self.space.kl_per_dim is not None
        self.set_title(
            f"Traversal at A{self.space.current_anchor + 1}: "
            + ("rows by KL (nats)" if kl_known else "rows by index (KL unknown)")
        )


class SampleView(ImagePlot):
    """A data point's sample beside its reconstruction (the decoded posterior mean)."""

    def __init__(self, space: LatentSpace, parent=None) -> None:
        super().__init__("Click a point on the map", parent, axes=True)
        self.space = space
        self.plot.hideAxis("left")
        self.set_ticks("bottom", [])
        self.index: int | None = None

    def show_point(self, k: int) -> None:
        """Show point ``k``: its data row (when the data are known) and the decoded mean."""
        space = self.space
        recon = np.asarray(space.decoder.decode_uint8(space.latents[k : k + 1]))[0]
        images = [recon]
        names = ["reconstruction" if space.has_encodings else "decoded"]
        row = space.sample(k)
        if row is not None:
            images.insert(0, self._as_image(row, recon.shape))
            names.insert(0, "data")
        stacked = np.stack(images)
        self.set_image(lm.tile(stacked, 1, len(images), pad=1, fill=GAP_GREY))
        w = recon.shape[1]
        self.set_ticks("bottom", [(_cell(w, i), n) for i, n in enumerate(names)])
        what = "point" if space.has_encodings else "prior draw"
        label = ""
        if space.labels is not None and space.label_names:
            i = int(space.labels[k])
            label = f", label {space.label_names[i] if 0 <= i < len(space.label_names) else i}"
        self.set_title(f"{what} {k}{label}")
        self.index = k

    def _as_image(self, row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """A data row in the decoder's display layout and range, as uint8."""
        from models.io.onnx_runtime import to_images

        lo, hi = getattr(self.space.decoder, "display_range", (0.0, 1.0))
        x = (np.asarray(row, dtype=np.float32).reshape(1, *self.space.output_shape) - lo) / (hi - lo)
        x = (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        img = to_images(x, self.space.output_shape)[0]
        return img.reshape(shape)
