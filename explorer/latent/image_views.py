"""Views of decoded images: one image, the interpolation strip, the traversal grid, a sample.

Each is a ``pyqtgraph`` plot holding one ``ImageItem`` (row-major, y down, aspect locked, pixels
drawn square without smoothing); a new image goes in with ``setImage`` and the view re-fits only
when the image's size changes. Axis ticks name what the pixels are: the anchors under the strip,
each traversal row's dimension and KL, each column's value.
"""

from __future__ import annotations

import os

import numpy as np

from models.latent import geometry as lm
from models.errors import ExportError

from .image_files import default_scale, save_labelled_png
from .image_plot import ImagePlot
from .model import LatentSpace
from .render import GAP_GREY, LiveRenderer


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
            name = f"A{self.space.current_anchor + 1}"
            self.set_title([f"Anchor {name}", name])  # the short form in a narrow column


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
        self.set_title(["Click a point on the map", "Click a point"])
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
        from models.io.onnx_runtime import grey_levels

        shown = getattr(self.space.decoder, "display_range", (0.0, 1.0))
        return grey_levels(row, shown, self.space.output_shape)[0].reshape(shape)
