"""What keeps pyqtgraph's painting cheap: the GUI thread paints every plot in software, and a
paint longer than a few milliseconds is a stutter the user feels (benchmarks/ui_latency.py,
benchmarks/explorer_latency.py)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem


def apply_ranges_before_paint(vb: pg.ViewBox) -> None:
    """A new view range costs one paint, not two: pyqtgraph applies a range to the items only
    while painting, and what that moves asks for a second paint of the same view. Applying it
    when the range changes lets the one paint show everything (the latent map's zoom frames
    halved; the live plots' range changes likewise)."""
    vb.sigRangeChanged.connect(lambda *_args: vb.updateMatrix())


def cache_legend(legend: pg.LegendItem) -> None:
    """Draw a legend's samples and texts once into a device cache instead of on every paint of
    the plot under them (ten labels cost ~3 ms a frame on the latent map). Call after adding
    entries; an entry that changes (a rename, a click that hides its curve) redraws its cache."""
    for sample, label in legend.items:
        for item in (sample, label, label.item):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
