"""The items that draw one run on the rate-distortion plane (made once, updated with setData)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from ..state import RunSession
from .common import brush, finite_xy, pen, set_data

#: At most this many training points are drawn per run (evenly strided); the rest are skipped.
MAX_TRAJECTORY_POINTS = 4000


class RunItems:
    """The items that draw one run; created once, updated with setData."""

    def __init__(self, plot: pg.PlotItem, session: RunSession) -> None:
        colour = session.colour
        self.session = session
        # Dense lines are drawn without antialiasing: it halves their software paint time.
        self.train = pg.PlotDataItem(pen=pen(colour, 1.0, alpha=40 if session.sweep else 110),
                                     name=session.label, antialias=False)
        self.val = pg.PlotDataItem(
            pen=pen(colour, 1.2, style=Qt.PenStyle.DashLine),
            symbol="o",
            symbolSize=8,
            symbolBrush=brush(colour),
            symbolPen=pg.mkPen("w", width=1),
        )
        self.latest = pg.ScatterPlotItem(
            size=13, symbol="star", brush=brush(colour), pen=pg.mkPen("k", width=0.8)
        )
        for item in (self.train, self.val, self.latest):
            plot.addItem(item)
        self.items = (self.train, self.val, self.latest)
        # Data kept for hover look-ups: the drawn (R, D) points, their step and epoch.
        self.points = np.empty((0, 2))
        self.point_steps = np.empty(0)
        self.point_epochs = np.empty(0)
        self.n_train_points = 0

    def remove(self, plot: pg.PlotItem) -> None:
        for item in self.items:
            plot.removeItem(item)

    def update(self) -> None:
        s = self.session
        for item in self.items:
            item.setVisible(s.visible)
        if not s.visible:
            self.points = np.empty((0, 2))
            self.n_train_points = 0
            return
        r, d = s.steps["rate"], s.steps["distortion"]
        if len(r) > MAX_TRAJECTORY_POINTS:
            stride = math.ceil(len(r) / MAX_TRAJECTORY_POINTS)
            idx = np.r_[np.arange(0, len(r) - 1, stride), len(r) - 1]
        else:
            idx = np.arange(len(r))
        tr, td = r[idx], d[idx]
        ok = np.isfinite(tr) & np.isfinite(td)
        self.train.setData(tr[ok], td[ok])
        vr, vd = s.epochs["val_rate"], s.epochs["val_distortion"]
        vr, vd = finite_xy(vr, vd)
        set_data(self.val, vr, vd)  # new points once an epoch
        if len(tr) and ok[-1]:
            set_data(self.latest, [tr[-1]], [td[-1]])
        else:
            set_data(self.latest, [], [])
        # What hover looks up: the drawn points, their step and epoch (numpy, no per-point Python).
        v_ok = np.isfinite(s.epochs["val_rate"]) & np.isfinite(s.epochs["val_distortion"])
        t_steps, t_epochs = _column(s.steps, "step", idx)[ok], _column(s.steps, "epoch", idx)[ok]
        v_all = np.arange(len(v_ok))
        v_steps, v_epochs = _column(s.epochs, "step", v_all)[v_ok], _column(s.epochs, "epoch", v_all)[v_ok]
        self.points = np.column_stack([np.r_[tr[ok], vr], np.r_[td[ok], vd]])
        self.point_steps = np.r_[t_steps, v_steps]
        self.point_epochs = np.r_[t_epochs, v_epochs]
        self.n_train_points = int(ok.sum())

    def describe(self, i: int) -> tuple[str, int, int]:
        """(kind, step, epoch) of drawn point ``i``."""
        kind = "training batch" if i < self.n_train_points else "validation"
        return kind, _int(self.point_steps[i]), _int(self.point_epochs[i])

    def relabel(self, legend: pg.LegendItem) -> None:
        self.train.setPen(pen(self.session.colour, 1.0, alpha=40 if self.session.sweep else 110))
        legend.removeItem(self.train)
        legend.addItem(self.train, self.session.label)


def _int(v: float) -> int:
    return int(v) if np.isfinite(v) else -1


def _column(store, name: str, idx: np.ndarray) -> np.ndarray:
    """``store[name][idx]``, or NaN where the column is unknown."""
    col = store[name]
    return col[idx] if len(col) else np.full(len(idx), np.nan)
