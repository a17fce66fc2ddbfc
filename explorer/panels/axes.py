"""The axes of the live plots: made with the plot (:func:`live_axes`), styled once
(:func:`style_plot`), their ticks at round values that never crowd (:class:`SpacedAxis`,
:func:`nice_step`, :func:`log_ticks`)."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics

from .paint import QuickAxis, apply_ranges_before_paint


def labels_that_fit(axis: pg.AxisItem, length: float) -> int:
    """How many value labels a vertical axis ``length`` px long shows without touching: each
    gets :attr:`SpacedAxis.LABEL_GAP` label heights (at least one label)."""
    height = QFontMetrics(axis.style["tickFont"] or axis.font()).height()
    return max(1, int(length // (height * SpacedAxis.LABEL_GAP)))


class SpacedAxis(QuickAxis):
    """A vertical axis whose value labels never touch. pyqtgraph labels every major tick and
    keeps at least 2.25 intervals whatever the axis's length, so a curve 45 px tall on a laptop
    showed six labels (-140 ... -240) on top of each other; here the major step grows (1, 2, 5
    times a power of ten) until each label has :attr:`LABEL_GAP` label heights of room, keeping
    at least one label in view."""

    LABEL_GAP = 1.5

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803
        levels = super().tickSpacing(minVal, maxVal, size)
        if not levels or self.orientation not in ("left", "right") or self._tickSpacing:
            return levels
        most = labels_that_fit(self, size)
        lo, hi = sorted((minVal, maxVal))

        def labels(step: float) -> int:  # multiples of step in view
            return math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9) + 1

        major = levels[0][0]
        while major > 0 and labels(major) > most:
            wider = nice_step(major * 1.5, 1)  # the next of 1, 2, 5 x 10^k
            if labels(wider) < 1:  # room for one label only: the round value nearest the middle
                middle = round((lo + hi) / 2 / major) * major
                return [(10 * max(hi - lo, major), middle)]  # (spacing, offset): one tick in view
            major = wider
        if major == levels[0][0]:
            return levels
        whole = [(s, o) for s, o in levels[1:] if s < major and abs(major / s - round(major / s)) < 1e-6]
        return [(major, 0.0), *whole]


def live_axes() -> dict[str, pg.AxisItem]:
    """The axes of a live plot, given to the plot when it is made (``axisItems=``), not swapped
    in later (``setAxisItems`` deletes the plot's first axes): a left axis whose labels keep
    apart on a short plot (:class:`SpacedAxis`) and pyqtgraph's own bottom axis (a
    :class:`QuickAxis` there measured no clear gain in ui_latency: 2 runs against 2, in turns).

    Two levels of ticks, major and minor: pyqtgraph's third level (up to 40 faint marks per
    axis, each label of it formatted and measured only to be dropped for want of room) was
    half of an axis's rebuild."""
    axes = {"left": SpacedAxis("left"), "bottom": pg.AxisItem("bottom")}
    for axis in axes.values():
        axis.setStyle(maxTickLevel=1)
    return axes


def style_plot(plot: pg.PlotItem, title: str | None, x_label: str, y_label: str,
               x_units: str | None = None, y_units: str | None = None) -> None:
    """Axis labels with units in words (``"nats"``), no SI prefixes on nats, on a plot made
    with :func:`live_axes`.

    No grid: a grid makes each axis span the whole plot, so every data update repaints the
    axes and their text too, which triples the paint time of a live plot.
    """
    if not isinstance(plot.getAxis("left"), SpacedAxis):
        raise TypeError("style_plot needs a plot made with axisItems=live_axes()")
    apply_ranges_before_paint(plot.getViewBox())
    if title:
        plot.setTitle(title, size="10pt")
    plot.setLabel("bottom", x_label, units=x_units)
    plot.setLabel("left", y_label, units=y_units)
    # All four: the hidden top and right axes follow the view too, and with an SI prefix each
    # range change rebuilt their (HTML) label.
    for name in ("bottom", "left", "top", "right"):
        plot.getAxis(name).enableAutoSIPrefix(False)


def nice_step(span: float, target: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about ``target`` intervals."""
    if not math.isfinite(span) or span <= 0:
        return 1.0
    raw = span / max(1, target)
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * power:
            return m * power
    return 10.0 * power


def log_ticks(lo: float, hi: float, max_ticks: int = 5) -> list[tuple[float, str]]:
    """Ticks for an axis that shows log10 of a value over [lo, hi] (in log10 units).

    Whole decades when the range spans two or more; otherwise values 1, 2 and 5 times a power
    of ten, thinned to at most ``max_ticks`` so that labels never crowd each other (pyqtgraph's
    own log-mode ticks label every minor tick when the range spans less than a decade).
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return []
    span = hi - lo
    if span >= 2:
        step = max(1, math.ceil(span / max_ticks))
        first = math.ceil(lo - 1e-9)
        return [(float(k), _fmt(10.0 ** k)) for k in range(first, int(math.floor(hi + 1e-9)) + 1, step)]
    for mantissas in ((1, 2, 5), (1, 2, 3, 5), (1, 1.5, 2, 3, 5, 7), tuple(range(1, 10))):
        values = [m * 10.0 ** e for e in range(math.floor(lo) - 1, math.ceil(hi) + 1)
                  for m in mantissas]
        ticks = [(math.log10(v), _fmt(v)) for v in values if lo - 1e-9 <= math.log10(v) <= hi + 1e-9]
        if len(ticks) >= 2:
            break
    if len(ticks) < 2:  # a very narrow range: its two ends
        ticks = [(lo, _fmt(10.0 ** lo)), (hi, _fmt(10.0 ** hi))]
    while len(ticks) > max_ticks:
        ticks = ticks[::2]
    # Labels closer than a sixth of the axis would touch on a short colour bar: keep every other.
    while len(ticks) > 2 and min(b[0] - a[0] for a, b in zip(ticks, ticks[1:])) < span / 6:
        ticks = ticks[::2]
    return ticks


def _fmt(v: float) -> str:
    """Short labels (a colour bar's axis is narrow): 0.01, 0.5, 20, 2e-4, 3e+04."""
    if 1e-3 <= v < 1e4:
        return f"{v:.3g}"
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
