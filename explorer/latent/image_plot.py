"""The plot every decoded-image view is drawn in: one ``ImageItem`` (row-major, y down, aspect
locked, pixels square without smoothing), re-fitted only when the image's size changes, with axis
labels thinned to what fits and a PNG export of what it shows."""

from __future__ import annotations

import math
import os

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QFontMetricsF

from models.errors import ExportError

from .image_files import default_scale, save_png

#: How far (pixels) an axis label may reach past the image's edge before it is hidden.
LABEL_OVERHANG_PX = 40
#: Least space (pixels) between two axis labels.
LABEL_GAP_PX = 6



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
        if not shiboken6.isValid(self.plot):  # closed since
            return
        if self._shape is None:  # nothing shown yet: only the title, fitted to the widget
            if self._titles:
                self._apply_title(min(self.plot.getViewBox().width() or 1e9, self.width()))
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
