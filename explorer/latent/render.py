"""Decoding for the explorer's views, throttled to the display's rate.

A drag emits far more position changes than a screen shows. :class:`LiveRenderer` remembers
only that the model changed: it decodes at once when the last frame is older than one display
period (so a single move shows with no added delay), otherwise on a timer when the period is up,
with the latest state, so a burst of moves costs one decode per displayed frame. Each frame decodes the whole path through
the anchors (the interpolation strip; the anchors are rows of it) in one batch call.

The traversal grid (one decode of dimensions x columns latents) follows the current anchor after
the drag settles: it is redrawn ``traversal_delay_ms`` after the last change, not during a drag.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from models.latent import geometry as lm
from models.errors import LatentExplorerError

from .model import LatentSpace

#: Grey of the one-pixel gaps between tiled images (on a 0-255 scale).
GAP_GREY = 90


def display_period_ms() -> float:
    """One frame of the primary screen (1000 / refresh rate), 60 Hz when unknown."""
    screen = QGuiApplication.primaryScreen()
    rate = screen.refreshRate() if screen is not None else 0.0
    if not rate or rate < 20 or rate > 500:
        rate = 60.0
    return 1000.0 / rate


class Throttle(QObject):
    """Calls ``callback`` at most once per ``interval_ms``, coalescing requests in between.

    ``request()`` runs it at once when the last call is at least 3/4 of an interval old (the
    leading edge: a lone change shows with no added delay), else when the interval is up;
    requests made while one is pending merge into it (the trailing edge shows the latest state).
    """

    def __init__(self, callback, interval_ms: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._callback = callback
        self.interval_ms = float(interval_ms)
        self._last = -1e9
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._fire)

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    def request(self) -> None:
        if self._timer.isActive():
            return
        wait = self.interval_ms - (time.perf_counter() - self._last) * 1000.0
        # A quarter-period of slack: moves that arrive at the display rate, each a little less
        # than a period after the previous decode (which started after its move), go at once
        # instead of waiting out the difference.
        if wait <= 0.25 * self.interval_ms:
            self._fire()
        else:
            self._timer.start(max(1, int(round(wait))))

    def flush(self) -> None:
        """Run a pending call now."""
        if self._timer.isActive():
            self._timer.stop()
            self._fire()

    def cancel(self) -> None:
        self._timer.stop()

    def _fire(self) -> None:
        self._last = time.perf_counter()
        self._callback()


class LiveRenderer(QObject):
    """Decodes what the views show whenever the :class:`LatentSpace` changes.

    Attributes (valid after the first frame)
    ----------------------------------------
    path : [T, d] the latents of the interpolation strip (anchors included)
    strip_images : [T, H, W(, 3)] uint8, one decoded image per path latent
    strip : the strip tiled into one image (one row, one-pixel grey gaps)
    anchor_image : the current anchor's decoded image (a row of ``strip_images``)
    grid_images, grid : the traversal's decoded images and their tiling (rows = dimensions)
    grid_dims, grid_values : the dimensions (rows) and values (columns) of the grid
    frames, traversals : counters of the frames and grids decoded so far

    Signals
    -------
    frameReady() : a new strip and anchor image
    traversalReady() : a new traversal grid
    failed(str) : decoding failed (one line)
    """

    frameReady = Signal()
    traversalReady = Signal()
    failed = Signal(str)

    def __init__(
        self,
        space: LatentSpace,
        parent: QObject | None = None,
        *,
        interval_ms: float | None = None,
        traversal_delay_ms: int = 150,
    ) -> None:
        super().__init__(parent)
        self.space = space
        self.frames = 0
        self.traversals = 0
        self.path = np.zeros((0, space.latent_dim), np.float32)
        self.strip_images: np.ndarray | None = None
        self.strip: np.ndarray | None = None
        self.anchor_image: np.ndarray | None = None
        self.grid_images: np.ndarray | None = None
        self.grid: np.ndarray | None = None
        self.grid_dims = np.zeros(0, np.int64)
        self.grid_values = np.zeros(0, np.float32)
        self._last_error = ""
        period = display_period_ms() if interval_ms is None else interval_ms
        self.throttle = Throttle(self.render_frame, period, self)
        self._trav_timer = QTimer(self)
        self._trav_timer.setSingleShot(True)
        self._trav_timer.setInterval(int(traversal_delay_ms))
        self._trav_timer.timeout.connect(self.render_traversal)

        space.anchorMoved.connect(self._on_anchor_moved)
        space.anchorsChanged.connect(self._on_anchors_changed)
        space.currentAnchorChanged.connect(self._on_current_changed)
        space.interpolationChanged.connect(self.throttle.request)
        space.traversalChanged.connect(self.render_traversal)
        space.pointsChanged.connect(self._on_points_changed)

    # ------------------------------------------------------------------ triggers
    def _on_anchor_moved(self, i: int) -> None:
        self.throttle.request()
        if i == self.space.current_anchor:
            self._trav_timer.start()

    def _on_anchors_changed(self) -> None:
        self.throttle.request()
        self._trav_timer.start()

    def _on_current_changed(self, _i: int) -> None:
        self.throttle.request()
        self._trav_timer.start()

    def _on_points_changed(self) -> None:
        # New encodings change the KL order of the traversal's rows.
        self._trav_timer.start()

    def settle(self) -> None:
        """Decode anything pending now (a drag ended): the strip, then the traversal."""
        self.throttle.flush()
        if self._trav_timer.isActive():
            self._trav_timer.stop()
            self.render_traversal()

    # ------------------------------------------------------------------ decoding
    def _decode(self, z: np.ndarray) -> np.ndarray | None:
        try:
            images = self.space.decoder.decode_uint8(z)
        except LatentExplorerError as exc:
            message = str(exc)
            if message != self._last_error:  # one report per distinct failure, not per frame
                self._last_error = message
                self.failed.emit(message)
            return None
        self._last_error = ""
        return np.asarray(images)

    def render_frame(self) -> None:
        """Decode the path through the anchors (one batch) and tile the strip."""
        space = self.space
        path = space.path_latents()
        images = self._decode(path)
        if images is None:
            return
        self.path = path
        self.strip_images = images
        self.anchor_image = images[space.anchor_rows()[space.current_anchor]]
        self.strip = lm.tile(images, 1, len(images), pad=1, fill=GAP_GREY)
        self.frames += 1
        self.frameReady.emit()

    def render_traversal(self) -> None:
        """Decode the traversal grid at the current anchor (one batch)."""
        self._trav_timer.stop()
        space = self.space
        dims = space.traversal_dims()
        values = space.traversal_values()
        images = self._decode(space.traversal_latents())
        if images is None:
            return
        self.grid_images = images
        self.grid_dims = dims
        self.grid_values = values
        self.grid = lm.tile(images, len(dims), len(values), pad=1, fill=GAP_GREY)
        self.traversals += 1
        self.traversalReady.emit()
