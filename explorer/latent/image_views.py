"""Views of decoded images: one image, the interpolation strip, the traversal grid, a sample.

Each is a ``pyqtgraph`` plot holding one ``ImageItem`` (row-major, y down, aspect locked, pixels
drawn square without smoothing); a new image goes in with ``setImage`` and the view re-fits only
when the image's size changes. Axis ticks name what the pixels are: the anchors under the strip,
each traversal row's dimension and KL, each column's value.
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter

from models.latent import geometry as lm
from models.errors import ExportError

from .model import LatentSpace
from .render import GAP_GREY, LiveRenderer


class ImagePlot(pg.GraphicsLayoutWidget):
    """One uint8 image ([H, W] grey or [H, W, 3] colour) in a plot, pixels square."""

    def __init__(self, title: str = "", parent=None, *, axes: bool = False) -> None:
        super().__init__(parent)
        self.plot = self.addPlot(title=title or None)
        # pyqtgraph's label makes its text width its minimum width again on every resize; the
        # title is fitted to the view (set_title), so it must never widen the plot.
        label = self.plot.titleLabel
        own_update_min = label.updateMin

        def update_min() -> None:
            own_update_min()
            self._free_title_width()

        label.updateMin = update_min
        self._free_title_width()
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
        for name in ("left", "bottom"):
            # Labels may reach a little past the image's edge (the end columns' labels are as
            # wide as their cells or wider); the view's margins leave room for them.
            self.plot.getAxis(name).setStyle(hideOverlappingLabels=LABEL_OVERHANG_PX)
        self.image: np.ndarray | None = None
        self._shape: tuple[int, ...] | None = None
        self._title = title
        self._titles: list[str] = [title]
        self._ticks: dict[str, list] = {}  # what each axis shows now (thinned to fit)
        self._all_ticks: dict[str, list] = {}  # every label asked for, and its short forms
        self.scale_px = 0.0  # screen pixels per image pixel, as last fitted
        self.cell_height: int | None = None  # height of one tiled image, when tiled
        self._margins = (0.0, 0.0)
        self._fit_timer = QTimer(self)
        self._fit_timer.setSingleShot(True)
        self._fit_timer.setInterval(0)
        self._fit_timer.timeout.connect(self._fit)
        vb.sigResized.connect(self._refit_labels)

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
        if self._shape is None or not shiboken6.isValid(self.plot):  # closed since
            return
        h, w = (s * 1.04 for s in self._shape[:2])  # the view's 2% padding on each side
        vb = self.plot.getViewBox()
        over_w = self.plot.geometry().width() - vb.geometry().width()  # axes, title
        over_h = self.plot.geometry().height() - vb.geometry().height()
        width, height = self.viewport().width() - 2, self.viewport().height() - 2
        edge = self._edge_room()  # the end labels below reach past the image's sides
        scale = min((width - over_w - 2 * edge) / w, (height - over_h) / h)
        if scale <= 0:
            return
        self.scale_px = scale
        self._fit_labels(scale, width - over_w)
        mx = max(edge, (width - over_w - w * scale) / 2)
        my = max(0.0, (height - over_h - h * scale) / 2)
        if abs(mx - self._margins[0]) > 1 or abs(my - self._margins[1]) > 1:
            self._margins = (mx, my)
            self.ci.setContentsMargins(mx, my, mx, my)
        ci = self.ci.geometry()
        if (ci.width() > self.range.width() + 1 or ci.height() > self.range.height() + 1) and \
                self.ci.minimumWidth() <= self.range.width() and \
                self.ci.minimumHeight() <= self.range.height():
            # Laid out while its minimum size was larger, the layout stayed wider than the
            # widget (pyqtgraph sets it to the widget's rectangle only on a resize).
            self.ci.setGeometry(self.range)

    def set_title(self, title: str | list[str]) -> None:
        """Set the title, or several forms of it, longest first: the longest that fits the
        view's width is shown (the last one elided if none does). Unchanged text costs nothing."""
        titles = [title] if isinstance(title, str) else list(title)
        if titles != self._titles:
            self._titles = titles
            self._apply_title(self.plot.getViewBox().width() or 1e9)

    def title(self) -> str:
        """The title shown now."""
        return self._title

    def _apply_title(self, width: float) -> None:
        titles = self._titles
        metrics = QFontMetricsF(self._title_font())
        room = max(20.0, width - 8)
        text = next((t for t in titles if metrics.horizontalAdvance(t) <= room), None)
        if text is None:
            text = metrics.elidedText(titles[-1], Qt.TextElideMode.ElideRight, room)
        if text != self._title:
            self._title = text
            self.plot.setTitle(text)

    def _free_title_width(self) -> None:
        """The title is fitted to the view (above), so it must not widen the plot: pyqtgraph
        makes a label's text width its minimum width, which pushed the image out of a narrow
        widget."""
        label = self.plot.titleLabel
        label.setMinimumWidth(0)
        hint = getattr(label, "_sizeHint", None)
        if isinstance(hint, dict) and Qt.SizeHint.MinimumSize in hint:
            hint[Qt.SizeHint.MinimumSize] = (0, hint[Qt.SizeHint.MinimumSize][1])
            hint[Qt.SizeHint.PreferredSize] = (0, hint[Qt.SizeHint.PreferredSize][1])

    def _title_font(self) -> QFont:
        font = QFont(self.font())
        label = self.plot.titleLabel
        size = label.opts.get("size")
        if isinstance(size, str) and size.endswith("pt"):
            font.setPointSizeF(float(size[:-2]))
        elif font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 1.25)  # pyqtgraph's default title size
        return font

    def set_ticks(self, axis: str, ticks: list[tuple[float, str]],
                  short: list[str] | None = None) -> None:
        """Label positions along ``axis`` ("bottom" or "left"); unchanged ticks cost nothing.

        Labels that would run together at the view's size are thinned (every other one, every
        third, ... keeping the first and the last); ``short`` gives a shorter form of each label,
        tried before thinning.
        """
        key = (ticks, short)
        if self._all_ticks.get(axis) != key:
            self._all_ticks[axis] = key
            self._show_ticks(axis, self._thin(axis, self.scale_px) if self.scale_px else ticks)
            self._fit_timer.start()  # the labels' size changes what is left for the image

    def shown_ticks(self, axis: str) -> list[tuple[float, str]]:
        """The labels ``axis`` shows now (after thinning)."""
        return list(self._ticks.get(axis, []))

    def _show_ticks(self, axis: str, ticks: list[tuple[float, str]]) -> None:
        if self._ticks.get(axis) != ticks:
            self._ticks[axis] = ticks
            self.plot.getAxis(axis).setTicks([ticks, []])

    def _thin(self, axis: str, scale: float) -> list[tuple[float, str]]:
        """The labels of ``axis`` that fit at ``scale`` screen pixels per image pixel."""
        ticks, short = self._all_ticks.get(axis, ([], None))
        if len(ticks) < 2 or scale <= 0:
            return list(ticks)
        metrics = QFontMetricsF(self.plot.getAxis(axis).style["tickFont"] or self.font())
        pos = [p * scale for p, _t in ticks]
        horizontal = axis in ("bottom", "top")
        forms = [[t for _p, t in ticks]] + ([list(short)] if short else [])

        def fits(keep: list[int], texts: list[str]) -> bool:
            for a, b in zip(keep, keep[1:]):
                if horizontal:
                    need = (metrics.horizontalAdvance(texts[a]) + metrics.horizontalAdvance(texts[b])) / 2
                else:
                    need = metrics.height()
                if pos[b] - pos[a] < need + LABEL_GAP_PX:
                    return False
            return True

        n = len(ticks)
        for texts in forms:
            if fits(list(range(n)), texts):
                return [(p, t) for (p, _old), t in zip(ticks, texts)]
        texts = forms[-1]
        # Every k-th label; a k dividing n - 1 keeps the last label too (a symmetric sweep
        # then keeps its middle, 0, as well).
        for k in range(2, n):
            keep = list(range(0, n, k))
            if (n - 1) % k:
                if len(keep) > 1 and fits([keep[-1], n - 1], texts):
                    keep.append(n - 1)
                else:
                    keep[-1] = n - 1
            if fits(keep, texts):
                return [(ticks[i][0], texts[i]) for i in keep]
        return [(ticks[0][0], texts[0])]

    def _refit_labels(self, *_args) -> None:
        """Thin the labels again for the view's actual scale (after a relayout)."""
        px = self.plot.getViewBox().viewPixelSize()[0]
        if self._shape is not None and px > 0 and math.isfinite(px):
            self.scale_px = 1.0 / px
            vb = self.plot.getViewBox()
            for axis in list(self._all_ticks):
                self._show_ticks(axis, self._thin(axis, self.scale_px))
            self._apply_title(min(vb.width(), self._shape[1] * self.scale_px))

    def _edge_room(self) -> float:
        """Half the width of the wider end label below the image, in its shortest form (pixels).

        The shortest form: a margin sized for the long one would shrink the image until only
        the short one fits. A longer label may reach a little further (``LABEL_OVERHANG_PX``).
        """
        ticks, short = self._all_ticks.get("bottom", ([], None))
        if not ticks:
            return 0.0
        texts = list(short) if short else [t for _p, t in ticks]
        metrics = QFontMetricsF(self.plot.getAxis("bottom").style["tickFont"] or self.font())
        return max(metrics.horizontalAdvance(t) for t in (texts[0], texts[-1])) / 2 + 2

    def _fit_labels(self, scale: float, width: float) -> None:
        for axis in list(self._all_ticks):
            self._show_ticks(axis, self._thin(axis, scale))
        w = self._shape[1] * scale if self._shape else width
        self._apply_title(min(width, max(w, 0.0)) if w else width)

    def save_png(self, path: str | os.PathLike, scale: int | None = None) -> str:
        """Save the image shown (not the widget) as PNG; see :func:`save_png`. By default each
        pixel becomes a block sized so that one tiled image is about 112 pixels high."""
        if self.image is None:
            raise ExportError(f"{os.fspath(path)}: nothing decoded yet to save")
        if scale is None:
            scale = default_scale(self.cell_height or self.image.shape[0])
        return save_png(self.image, path, scale)


#: How far (pixels) an axis label may reach past the image's edge before it is hidden.
LABEL_OVERHANG_PX = 40
#: Least space (pixels) between two axis labels.
LABEL_GAP_PX = 6


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
    return write_png(QImage(img.data, w, h, img.strides[0], fmt).copy(), path)


def write_png(qimg: QImage, path: str | os.PathLike) -> str:
    """Write ``qimg`` as PNG at ``path``: the one place the explorer's images are written.

    The file goes to a temporary name in the same folder and is renamed, so a failed save leaves
    no partial file; it gets the mode an ordinary new file gets (0666 less the umask), not the
    temporary file's 0600. Raises :class:`ExportError` with one line naming the file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ExportError(f"{path}: the folder does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=folder)
    os.close(fd)
    try:
        if not qimg.save(tmp, "PNG"):
            raise ExportError(f"{path}: could not write the PNG")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise ExportError(f"{path}: could not write the PNG ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def save_labelled_png(image: np.ndarray, path: str | os.PathLike, scale: int,
                      rows: list[tuple[float, str]], columns: list[tuple[float, str]],
                      title: str = "", column_title: str = "") -> tuple[str, tuple[int, int]]:
    """Write ``image`` (uint8 [H, W] or [H, W, 3]) scaled by ``scale`` with its labels around it:
    ``rows`` (image y, text) on the left, ``columns`` (image x, text) below, ``title`` above and
    ``column_title`` under the column labels; black text on white.

    Returns the path and where the image's top-left corner is in the file (x, y).
    """
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ExportError(f"{os.fspath(path)}: cannot save an image of shape {img.shape} as PNG")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(np.repeat(np.repeat(img, scale, axis=0), scale, axis=1))
    h, w = img.shape[:2]
    font = QFont()
    font.setPixelSize(max(11, min(18, int(round(scale * 4)))))
    metrics = QFontMetricsF(font)
    line = metrics.height()
    pad = int(round(line * 0.6))
    left = int(max([metrics.horizontalAdvance(t) for _p, t in rows] or [0])) + (2 * pad if rows else pad)
    top = int(line + 2 * pad) if title else pad
    bottom = (int(line) + 2 * pad if columns else pad) + (int(line) + pad if column_title else 0)
    right = pad + int(max([metrics.horizontalAdvance(t) for _p, t in columns[-1:]] or [0]) / 2)
    out = QImage(left + w + right, top + h + bottom, QImage.Format.Format_RGB888)
    out.fill(QColor("white"))
    painter = QPainter(out)
    try:
        painter.drawImage(left, top, QImage(img.data, w, h, img.strides[0], QImage.Format.Format_RGB888))
        painter.setFont(font)
        painter.setPen(QColor("black"))
        for y, text in rows:
            painter.drawText(QRectF(0, top + y * scale - line / 2, left - pad, line),
                             int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
        for x, text in columns:
            tw = metrics.horizontalAdvance(text) + 2
            painter.drawText(QRectF(left + x * scale - tw / 2, top + h + pad, tw, line),
                             int(Qt.AlignmentFlag.AlignCenter), text)
        if column_title:
            painter.drawText(QRectF(left, top + h + 2 * pad + line, w, line),
                             int(Qt.AlignmentFlag.AlignCenter), column_title)
        if title:
            painter.drawText(QRectF(0, pad, out.width(), line), int(Qt.AlignmentFlag.AlignCenter), title)
    finally:
        painter.end()
    return write_png(out, path), (left, top)


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
        s, n = self.space, len(r.strip_images)
        self.set_title([
            f"{s.mode.capitalize()} interpolation, {s.steps} steps per segment, {n} images",
            f"{s.mode.capitalize()} interpolation, {n} images",
            f"{s.mode.capitalize()}, {n} images",
        ])


class TraversalView(ImagePlot):
    """The traversal grid: a row per dimension (most KL first), a column per value."""

    def __init__(self, space: LatentSpace, renderer: LiveRenderer, parent=None) -> None:
        super().__init__("Traversal", parent, axes=True)
        self.space = space
        self.renderer = renderer
        self.saved_origin: tuple[int, int] | None = None
        renderer.traversalReady.connect(self._show)

    def row_labels(self, short: bool = False) -> list[str]:
        """One label per row: the dimension, its KL (nats) and a 'collapsed' mark (short: the
        dimension alone)."""
        kl = self.space.kl_per_dim
        collapsed = set(self.space.collapsed_dims)
        labels = []
        for d in self.renderer.grid_dims:
            text = f"z{int(d)}"
            if kl is not None and not short:
                text += f"  {kl[int(d)]:.2f}"
            if int(d) in collapsed and not short:
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
        self.set_ticks("left", left, short=self.row_labels(short=True))
        self.set_ticks("bottom", bottom)
        kl_known = self.space.kl_per_dim is not None
        a = f"A{self.space.current_anchor + 1}"
        order = "rows by KL (nats)" if kl_known else "rows by index (KL unknown)"
        self.set_title([f"Traversal at {a}: {order}", f"Traversal at {a}", a])

    def save_png(self, path: str | os.PathLike, scale: int | None = None) -> str:
        """Save the grid with its labels: each row's dimension and KL on the left, each column's
        value below, what the grid is above. ``saved_origin`` is then where the grid's top-left
        pixel is in the file."""
        r = self.renderer
        if self.image is None or r.grid_images is None:
            raise ExportError(f"{os.fspath(path)}: nothing decoded yet to save")
        h, w = r.grid_images.shape[1:3]
        if scale is None:
            scale = default_scale(h)
        rows = [(_cell(h, i), text) for i, text in enumerate(self.row_labels())]
        columns = [(_cell(w, j), f"{v:g}") for j, v in enumerate(r.grid_values)]
        kl_known = self.space.kl_per_dim is not None
        title = (f"Traversal at anchor A{self.space.current_anchor + 1}: one row per latent dimension"
                 + (" (KL in nats)" if kl_known else ""))
        path, self.saved_origin = save_labelled_png(
            self.image, path, scale, rows, columns, title,
            "value of the row's dimension (standard deviations of the prior)")
        return path


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
        short = ["data", "recon." if space.has_encodings else "decoded"][-len(names):]
        self.set_ticks("bottom", [(_cell(w, i), n) for i, n in enumerate(names)], short=short)
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
