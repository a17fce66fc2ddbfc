"""Controls of the latent explorer: the projection, interpolation and traversal settings, and one
slider per latent dimension holding the current anchor's value."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QSpinBox,
    QWidget,
)

from .model import LatentSpace

#: Slider resolution: values move in steps of 1 / SLIDER_SCALE.
SLIDER_SCALE = 100


class DimSliders(QScrollArea):
    """One slider per latent dimension showing (and setting) the current anchor's value.

    Each row names the dimension, its KL in nats when known, marks the dimensions on the map's
    axes and the collapsed ones. The range is [-4, 4] or wider when the data reach further.
    ``released()`` is emitted when the user lets go of a slider.
    """

    released = Signal()

    def __init__(self, space: LatentSpace, parent=None) -> None:
        super().__init__(parent)
        self.space = space
        self.setWidgetResizable(True)
        self.sliders: list[QSlider] = []
        self.value_labels: list[QLabel] = []
        self.name_labels: list[QLabel] = []
        self._updating = False
        self._limit = 4.0
        self._build()
        space.anchorMoved.connect(self._on_anchor_moved)
        space.currentAnchorChanged.connect(lambda _i: self.sync())
        space.anchorsChanged.connect(self.sync)
        space.pointsChanged.connect(self._on_points_changed)
        space.projectionChanged.connect(self._update_names)

    def _build(self) -> None:
        body = QWidget()
        grid = QGridLayout(body)
        grid.setContentsMargins(4, 2, 4, 2)
        grid.setVerticalSpacing(1)
        for d in range(self.space.latent_dim):
            name = QLabel()
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setObjectName(f"dim{d}")
            value = QLabel()
            value.setMinimumWidth(44)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            slider.valueChanged.connect(lambda v, d=d: self._on_slider(d, v))
            slider.sliderReleased.connect(self.released.emit)
            grid.addWidget(name, d, 0)
            grid.addWidget(slider, d, 1)
            grid.addWidget(value, d, 2)
            self.name_labels.append(name)
            self.sliders.append(slider)
            self.value_labels.append(value)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(self.space.latent_dim, 1)
        self.setWidget(body)
        self._on_points_changed()

    def _on_points_changed(self) -> None:
        reach = float(np.abs(self.space.latents).max()) if len(self.space.latents) else 0.0
        self._limit = max(4.0, math.ceil(reach))
        r = int(self._limit * SLIDER_SCALE)
        for s in self.sliders:
            s.blockSignals(True)
            s.setRange(-r, r)
            s.blockSignals(False)
        self._update_names()
        self.sync()

    def _update_names(self) -> None:
        space = self.space
        kl = space.kl_per_dim
        collapsed = set(space.collapsed_dims)
        proj = space.projection
        on_axes = {}
        if space.projection_kind == "dims":
            on_axes = {proj.x_dim: "x", proj.y_dim: "y"}  # type: ignore[attr-defined]
        for d, label in enumerate(self.name_labels):
            text = f"z{d}"
            if d in on_axes:
                text = f"<b>z{d}</b> ({on_axes[d]})"
            if kl is not None:
                text += f" <span style='color:gray'>{kl[d]:.2f}</span>"
            if d in collapsed:
                text += " <span style='color:gray'>collapsed</span>"
            label.setText(text)
            label.setToolTip(
                f"z{d}: KL {kl[d]:.3f} nats" if kl is not None else f"z{d}: KL unknown"
            )

    def sync(self) -> None:
        """Show the current anchor's values."""
        z = self.space.anchor(self.space.current_anchor)
        self._updating = True
        try:
            for d, (slider, label) in enumerate(zip(self.sliders, self.value_labels)):
                slider.setValue(int(round(float(z[d]) * SLIDER_SCALE)))
                label.setText(f"{float(z[d]):+.2f}")
        finally:
            self._updating = False

    def _on_anchor_moved(self, i: int) -> None:
        if i == self.space.current_anchor and not self._updating:
            self.sync()

    def _on_slider(self, d: int, v: int) -> None:
        if self._updating:
            return
        value = v / SLIDER_SCALE
        self.value_labels[d].setText(f"{value:+.2f}")
        self._updating = True
        try:
            self.space.set_anchor_dim(self.space.current_anchor, d, value)
        finally:
            self._updating = False

    def set_value(self, d: int, value: float) -> None:
        """Move slider ``d`` as a user would (tests, keyboard)."""
        self.sliders[d].setValue(int(round(value * SLIDER_SCALE)))


class SettingsBar(QWidget):
    """Projection (dimension pair or PCA), interpolation (mode, steps) and traversal settings."""

    def __init__(self, space: LatentSpace, parent=None) -> None:
        super().__init__(parent)
        self.space = space
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 2, 2, 2)
        self.projection = QComboBox()
        self.projection.addItems(["Dimensions", "PCA"])
        self.projection.setToolTip("Map axes: a pair of latent dimensions, or the first two principal components")
        self.x_dim = QComboBox()
        self.y_dim = QComboBox()
        # In PCA mode the (disabled) pickers show the axes' names, not a stale "z0 / z0".
        self.x_dim.setPlaceholderText("PC1")
        self.y_dim.setPlaceholderText("PC2")
        self.mode = QComboBox()
        self.mode.addItems(["linear", "spherical"])
        self.mode.setToolTip("Interpolation between consecutive anchors (spherical: slerp)")
        self.steps = QSpinBox()
        self.steps.setRange(2, 64)
        self.steps.setPrefix("steps ")
        self.steps.setToolTip("Images per segment between two anchors, both included")
        self.columns = QSpinBox()
        self.columns.setRange(3, 21)
        self.columns.setPrefix("columns ")
        self.limit = QDoubleSpinBox()
        self.limit.setRange(0.5, 8.0)
        self.limit.setSingleStep(0.5)
        self.limit.setPrefix("± ")
        self.limit.setToolTip("Traversal range, in standard deviations of the prior")
        for w in (
            QLabel("Map"), self.projection, self.x_dim, self.y_dim,
            QLabel("  Interpolation"), self.mode, self.steps,
            QLabel("  Traversal"), self.columns, self.limit,
        ):  # fmt: skip
            row.addWidget(w)
        row.addStretch(1)
        self._fill_dims()
        self.sync()
        self.projection.currentIndexChanged.connect(self._on_projection)
        self.x_dim.currentIndexChanged.connect(self._on_projection)
        self.y_dim.currentIndexChanged.connect(self._on_projection)
        self.mode.currentTextChanged.connect(space.set_mode)
        self.steps.valueChanged.connect(space.set_steps)
        self.columns.valueChanged.connect(lambda n: space.set_traversal(columns=n))
        self.limit.valueChanged.connect(lambda v: space.set_traversal(limit=v))
        space.pointsChanged.connect(self._on_points_changed)
        # Settings changed from code (a restored session, a script, a test) show here too.
        space.projectionChanged.connect(self.sync)
        space.interpolationChanged.connect(self.sync)
        space.traversalChanged.connect(self.sync)

    def _fill_dims(self) -> None:
        kl = self.space.kl_per_dim
        for combo in (self.x_dim, self.y_dim):
            combo.blockSignals(True)
            combo.clear()
            for d in range(self.space.latent_dim):
                combo.addItem(f"z{d}" + (f" ({kl[d]:.2f})" if kl is not None else ""), d)
            combo.blockSignals(False)
        self.y_dim.setEnabled(self.space.latent_dim > 1)

    def _on_points_changed(self) -> None:
        self._fill_dims()
        self.sync()

    def sync(self) -> None:
        """Show the model's settings without feeding them back."""
        space = self.space
        widgets = (self.projection, self.x_dim, self.y_dim, self.mode, self.steps, self.columns, self.limit)
        for w in widgets:
            w.blockSignals(True)
        try:
            pca = space.projection_kind == "pca"
            self.projection.setCurrentIndex(1 if pca else 0)
            if pca:
                self.x_dim.setCurrentIndex(-1)  # shows the placeholder, "PC1" / "PC2"
                self.y_dim.setCurrentIndex(-1)
            else:
                self.x_dim.setCurrentIndex(space.projection.x_dim)  # type: ignore[attr-defined]
                y = space.projection.y_dim  # type: ignore[attr-defined]
                self.y_dim.setCurrentIndex(0 if y is None else y)
            self.x_dim.setEnabled(not pca)
            self.y_dim.setEnabled(not pca and space.latent_dim > 1)
            self.mode.setCurrentText(space.mode)
            self.steps.setValue(space.steps)
            self.columns.setValue(space.traversal_columns)
            self.limit.setValue(space.traversal_limit)
        finally:
            for w in widgets:
                w.blockSignals(False)

    def _on_projection(self) -> None:
        space = self.space
        if self.projection.currentIndex() == 1:
            space.set_projection_pca()
        elif space.latent_dim == 1:
            space.set_projection_dims(0, None)
        else:
            x, y = self.x_dim.currentIndex(), self.y_dim.currentIndex()
            if x < 0 or y < 0:  # back from PCA: the two dimensions with the most KL
                order = space.dims_by_kl()
                x, y = int(order[0]), int(order[1])
            if x == y:  # keep the pair valid: move the other axis off the chosen dimension
                other = self.y_dim if self.sender() is self.x_dim else self.x_dim
                y_new = (x + 1) % space.latent_dim
                other.blockSignals(True)
                other.setCurrentIndex(y_new)
                other.blockSignals(False)
                if other is self.y_dim:
                    y = y_new
                else:
                    x = y_new
            space.set_projection_dims(x, y)
        self.sync()
