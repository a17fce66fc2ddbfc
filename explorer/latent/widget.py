"""The latent explorer for one decoder: map, anchor image, sample, sliders, strip and traversal.

:class:`LatentExplorerWidget` takes a :class:`LatentSpace` and assembles the views around it; the
views subscribe to the space and to one :class:`LiveRenderer` that decodes for all of them.
It works on its own (tests, benchmarks) as well as inside the app's dock.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from models.errors import LatentExplorerError

from ..actions import widget_action
from .controls import DimSliders, SettingsBar
from .image_views import AnchorImageView, SampleView, StripView, TraversalView
from .map_view import LatentMapView
from .model import LatentSpace
from .render import LiveRenderer


class LatentExplorerWidget(QWidget):
    """All views of one :class:`LatentSpace`.

    Signals
    -------
    error(str) : a one-line message for the user (a failed decode or save)
    """

    error = Signal(str)

    def __init__(self, space: LatentSpace, parent=None, *, interval_ms: float | None = None) -> None:
        super().__init__(parent)
        self.space = space
        self.renderer = LiveRenderer(space, self, interval_ms=interval_ms)
        self.map = LatentMapView(space)
        self.anchor_view = AnchorImageView(space, self.renderer)
        self.sample_view = SampleView(space)
        self.strip_view = StripView(space, self.renderer)
        self.traversal_view = TraversalView(space, self.renderer)
        self.sliders = DimSliders(space)
        self.settings = SettingsBar(space)
        self.status = QLabel()
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.add_button = QPushButton("Add anchor")
        self.add_button.setToolTip("Add an anchor (or double-click the map)")
        self.remove_button = QPushButton("Remove anchor")
        self.remove_button.setToolTip("Remove the current anchor (Delete)")
        self.reset_button = QPushButton("Reset anchors")
        self.save_strip_button = QPushButton("Save strip…")
        self.save_grid_button = QPushButton("Save grid…")
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.reset_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.status, 4)
        for b in (self.save_strip_button, self.save_grid_button):
            buttons.addWidget(b)

        self.map.setMinimumSize(240, 200)
        self.strip_view.setMinimumHeight(90)
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.anchor_view)
        side.addWidget(self.sample_view)
        side.addWidget(self.sliders)
        side.setSizes([220, 140, 260])
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.map)
        left.addWidget(self.strip_view)
        left.setSizes([520, 140])
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(side)
        main.addWidget(self.traversal_view)
        main.setSizes([560, 260, 360])
        self.splitter = main
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.settings)
        layout.addWidget(main, 1)
        layout.addLayout(buttons)

        widget_action("remove_anchor", self, self.remove_current_anchor)  # Delete, Backspace

        self.add_button.clicked.connect(self.add_anchor)
        self.remove_button.clicked.connect(self.remove_current_anchor)
        self.reset_button.clicked.connect(space.reset_anchors)
        self.save_strip_button.clicked.connect(lambda: self._ask_and_save("strip"))
        self.save_grid_button.clicked.connect(lambda: self._ask_and_save("grid"))
        self.map.pointClicked.connect(self._show_point)
        self.map.dragFinished.connect(lambda _i: self.renderer.settle())
        self.sliders.released.connect(self.renderer.settle)
        self.renderer.failed.connect(self._report)
        space.anchorsChanged.connect(self._update_buttons)
        space.pointsChanged.connect(lambda: self.set_status(self.describe()))
        self._update_buttons()
        self.set_status(self.describe())
        self.renderer.render_frame()
        self.renderer.render_traversal()

    # ------------------------------------------------------------------ actions
    def add_anchor(self) -> int:
        """Add an anchor next to the current one (a tenth of the view away), make it current."""
        vb = self.map.getPlotItem().getViewBox()
        (x0, x1), (y0, y1) = vb.viewRange()
        x, y = self.space.anchor_position(self.space.current_anchor)
        return self.space.add_anchor(xy=(x + 0.1 * (x1 - x0), y + 0.1 * (y1 - y0)))

    def _show_point(self, k: int) -> None:
        """A clicked point beside its reconstruction; a decoder that fails says so once."""
        try:
            self.sample_view.show_point(k)
        except LatentExplorerError as exc:
            self._report(str(exc))

    def remove_current_anchor(self) -> bool:
        return self.space.remove_anchor(self.space.current_anchor)

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self.space.n_anchors > 1)

    def save(self, what: str, path: str) -> str:
        """Save the interpolation strip (``"strip"``) or traversal grid (``"grid"``) as PNG."""
        self.renderer.settle()
        view = self.strip_view if what == "strip" else self.traversal_view
        return view.save_png(path)

    def _ask_and_save(self, what: str) -> None:
        title = "Save interpolation strip" if what == "strip" else "Save traversal grid"
        path, _ = QFileDialog.getSaveFileName(self, title, f"{what}.png", "PNG images (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        try:
            self.save(what, path)
        except LatentExplorerError as exc:
            self._report(str(exc))
            return
        self.set_status(f"Saved {os.path.basename(path)}")

    # ------------------------------------------------------------------ status
    def describe(self) -> str:
        s = self.space
        what = f"{len(s.points):,} encoded points" if s.has_encodings else (
            f"{len(s.points):,} prior draws (no data: decoder only)"
        )
        collapsed = s.collapsed_dims
        parts = [f"latent size {s.latent_dim}", what]
        if collapsed:
            parts.append(f"{len(collapsed)} collapsed: " + ", ".join(f"z{d}" for d in collapsed))
        return "; ".join(parts)

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def _report(self, message: str) -> None:
        self.set_status(message)
        self.error.emit(message)
