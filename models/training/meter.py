"""Step statistics kept on the device between reports: one host sync per ``log_every`` steps.

Each step writes its minibatch means [D, KL_1..KL_d] into a row of a device buffer and ORs a
non-finite row into ``found_inf``, the flag that makes fused Adam skip that step and every later
one on the device (no sync needed to stop a diverging run from moving). ``drain`` brings the rows
to the host, keeps the finite prefix and says where the first non-finite row was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Interval:
    """The finite steps since the previous report: ``mean`` [D, KL_1..KL_d] weighted by rows,
    the last finite step, the finite steps' rows and the seconds they took (validation and pauses
    excluded); ``bad_row``/``bad_step`` the first non-finite step's values, if one was."""

    mean: np.ndarray | None
    last_step: int
    samples: float
    seconds: float
    bad_row: np.ndarray | None
    bad_step: int


class StepMeter:
    """Per-step distortion and KL per dimension, on the device, with the epoch's running sums."""

    def __init__(self, latent_dim: int, log_every: int, device: torch.device) -> None:
        self.latent_dim = latent_dim
        self._buf = torch.zeros((log_every, latent_dim + 1), dtype=torch.float32, device=device)
        self.found_inf = torch.zeros((), dtype=torch.float32, device=device)
        self._rows = 0  # rows of _buf in use
        self._sizes: list[int] = []
        self._t_mark = time.perf_counter()
        self._excluded = 0.0  # seconds of validation and pauses since _t_mark
        self._epoch_sums = np.zeros(latent_dim + 1)
        self._epoch_count = 0.0

    @torch.no_grad()
    def record(self, distortion: torch.Tensor, kl_per_dim: torch.Tensor, rows: int) -> None:
        """One step's minibatch means, on the device (no sync)."""
        row = self._buf[self._rows]
        torch.mean(distortion.detach(), 0, keepdim=True, out=row[:1])
        torch.mean(kl_per_dim.detach(), 0, out=row[1:])
        self.found_inf.logical_or_(~torch.isfinite(row).all())
        self._sizes.append(rows)
        self._rows += 1

    def exclude(self, seconds: float) -> None:
        """Leave ``seconds`` (a validation, a pause) out of the throughput."""
        self._excluded += seconds

    def new_epoch(self) -> None:
        self._epoch_sums = np.zeros(self.latent_dim + 1)
        self._epoch_count = 0.0

    def epoch_means(self) -> np.ndarray:
        """[D, KL_1..KL_d] over the epoch's finite steps, weighted by rows."""
        return self._epoch_sums / max(self._epoch_count, 1.0)

    def drain(self, step: int) -> Interval | None:
        """The rows since the last drain, at optimiser step ``step`` (the one sync); None if
        no step ran since."""
        k = self._rows
        if k == 0:
            return None
        rows = self._buf[:k].double().cpu().numpy()
        sizes = np.asarray(self._sizes, dtype=np.float64)
        first = step - k + 1  # the step of rows[0]
        self._rows = 0
        self._sizes.clear()
        finite = np.isfinite(rows).all(1)
        n_good = len(rows) if finite.all() else int(np.argmin(finite))
        seconds = max(time.perf_counter() - self._t_mark - self._excluded, 1e-9)
        mean = None
        if n_good:
            good, w = rows[:n_good], sizes[:n_good]
            weighted = (good * w[:, None]).sum(0)
            self._epoch_sums = self._epoch_sums + weighted
            self._epoch_count += w.sum()
            mean = weighted / w.sum()
        bad = rows[n_good] if n_good < len(rows) else None
        return Interval(mean, first + n_good - 1, float(sizes[:n_good].sum()), seconds, bad, first + n_good)

    def start_interval(self) -> None:
        """Start timing the next interval now: what ran since the drain (the report's listeners,
        the finiteness check) is not charged to the next interval's throughput."""
        self._t_mark, self._excluded = time.perf_counter(), 0.0
