"""The training speed the Training panel shows, and the time left it implies: smoothed.

Each step row of a run carries the samples/s measured since the row before; one slow or fast
interval (a validation pass, a garbage collection) made the time left jump. :class:`SpeedEstimate`
keeps an exponential moving average of those rates, row by row, skips the first interval after a
pause (it measures the pause, not the training), and starts again for another run.
"""

from __future__ import annotations

import math

import numpy as np

#: Weight of the newest interval in the average (about the last 1 / ALPHA intervals count).
ALPHA = 0.15


class SpeedEstimate:
    """Smoothed samples/s of one run's step rows, fed with the rows as they arrive."""

    def __init__(self, alpha: float = ALPHA) -> None:
        self.alpha = float(alpha)
        self.reset()

    def reset(self, key: object = None) -> None:
        self.key = key
        self.rows_seen = 0
        self.value: float | None = None
        self._skip_next = False

    def paused(self) -> None:
        """The run paused: the first interval after it resumes is not a training speed."""
        self._skip_next = True

    def update(self, rates: np.ndarray) -> float | None:
        """Take the rates of the rows after those seen already (``rates`` is the whole column)."""
        new = np.asarray(rates, dtype=np.float64)[self.rows_seen:]
        self.rows_seen += len(new)
        for r in new:
            if not math.isfinite(r) or r <= 0:
                continue
            if self._skip_next:
                self._skip_next = False
                continue
            self.value = r if self.value is None else self.alpha * r + (1 - self.alpha) * self.value
        return self.value

    def seconds_left(self, steps_left: int, batch_size: int) -> float:
        """Seconds for ``steps_left`` steps of ``batch_size`` samples at the smoothed speed."""
        if not self.value:
            return math.nan
        return max(0, steps_left) * batch_size / self.value
