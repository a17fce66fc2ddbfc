"""The rate-distortion frontier of sweeps, and the feasible region's boundary D = H - R.

Alemi et al. (2018, "Fixing a Broken ELBO"): every model of a family sits at a point (R, D) of
the plane, and the points a beta sweep reaches trace the family's frontier. The data's entropy
H bounds them all: D >= H - R. H is unknown; the best IWAE log-likelihood seen on the data set
estimates it from above (H <= -IWAE, the IWAE being a lower bound on log p(x)), so the line
D = H_est - R is drawn only when a diagnosis has given an IWAE.

:func:`frontier_lines` picks, for each sweep, each run's latest validation point and orders them
by the sweep's first varied setting (one line per value of a second varied setting);
:func:`entropy_estimate` is the best IWAE's H. :class:`FrontierItems` draws both on a plot,
with items made once and updated with ``setData``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from ..state import RunSession
from .common import brush, pen, set_data

#: Frontier lines kept ready (a sweep with a second varied setting draws one per value).
MAX_LINES = 8


@dataclass
class FrontierLine:
    """One sweep's frontier: its runs in the order of the varied setting, and their points."""

    sweep: str
    setting: str
    sessions: list[RunSession]
    rate: np.ndarray
    distortion: np.ndarray


def latest_validation(session: RunSession) -> tuple[float, float] | None:
    """(R, D) of the run's latest finite validation point, or None before its first epoch."""
    r, d = session.epochs["val_rate"], session.epochs["val_distortion"]
    ok = np.flatnonzero(np.isfinite(r) & np.isfinite(d)) if len(r) else []
    if len(ok) == 0:
        return None
    return float(r[ok[-1]]), float(d[ok[-1]])


def frontier_lines(sessions: Iterable[RunSession]) -> list[FrontierLine]:
    """The frontier of each sweep among ``sessions`` (visible runs of a sweep, with a point)."""
    groups: dict[tuple, list[tuple[float, RunSession, tuple[float, float]]]] = {}
    names: dict[tuple, str] = {}
    for s in sessions:
        if not s.sweep or not s.settings or not s.visible:
            continue
        point = latest_validation(s)
        if point is None:
            continue
        first, *rest = s.settings.items()
        key = (s.sweep, tuple(rest))
        names[key] = first[0]
        groups.setdefault(key, []).append((float(first[1]), s, point))
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        members.sort(key=lambda m: m[0])
        pts = np.array([m[2] for m in members], dtype=float)
        out.append(FrontierLine(key[0], names[key], [m[1] for m in members], pts[:, 0], pts[:, 1]))
    return out


def entropy_estimate(sessions: Iterable[RunSession], data: str | None) -> float | None:
    """H estimated as minus the best IWAE of the runs on data set ``data`` (None: none known)."""
    best = -math.inf
    for s in sessions:
        if s.config is None or s.config.train.data != data or not s.diagnosis:
            continue
        iwae = s.diagnosis.get("iwae")
        if iwae is not None and math.isfinite(float(iwae)):
            best = max(best, float(iwae))
    return -best if math.isfinite(best) else None


class FrontierItems:
    """The frontier lines and the boundary, on ``plot``; ``update(sessions, current)``."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.lines: list[pg.PlotDataItem] = []
        for _ in range(MAX_LINES):
            line = pg.PlotDataItem(pen=pen("#222222", 2.2), symbol="d", symbolSize=10,
                                   symbolBrush=brush("#ffffff"), symbolPen=pg.mkPen("#222222", width=2))
            line.setZValue(8)
            plot.addItem(line)
            self.lines.append(line)
        self.boundary = pg.PlotCurveItem(pen=pen("#B00020", 1.8, style=Qt.PenStyle.DashDotLine))
        self.boundary.setZValue(6)
        plot.addItem(self.boundary, ignoreBounds=True)
        self.boundary_label = pg.TextItem("", color="#B00020", anchor=(0.0, 0.0))  # below the line
        self.boundary_label.hide()
        plot.addItem(self.boundary_label, ignoreBounds=True)
        self.shown: list[FrontierLine] = []
        self.entropy: float | None = None

    def update(self, sessions: list[RunSession], current: RunSession | None) -> None:
        self.shown = frontier_lines(sessions)[:MAX_LINES]
        for i, line in enumerate(self.lines):
            if i < len(self.shown):
                f = self.shown[i]
                set_data(line, f.rate, f.distortion)
                line.show()
            else:
                set_data(line, [], [])
                line.hide()
        data = current.config.train.data if current is not None and current.config is not None else None
        self.entropy = entropy_estimate(sessions, data)
        if self.entropy is None or self.entropy <= 0:
            set_data(self.boundary, [], [])
            self.boundary_label.hide()
            return
        h = self.entropy
        set_data(self.boundary, [0.0, h], [h, 0.0])  # D = H - R, from R = 0 to D = 0
        self.boundary_label.setText(f"D = H − R (H ≤ {h:.4g} nats, best IWAE)")
        self.boundary_label.setPos(0.0, h)
        self.boundary_label.show()

    def points(self) -> list[tuple[RunSession, float, float]]:
        """Every drawn frontier point and its run (for clicks)."""
        return [(s, float(r), float(d)) for f in self.shown
                for s, r, d in zip(f.sessions, f.rate, f.distortion)]
