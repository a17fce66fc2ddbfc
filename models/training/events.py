"""What a training run reports: one event type per moment (a step, an epoch, the end).

Events are plain dataclasses of numbers and numpy arrays, so they cross threads and processes
(the app's tasks, a sweep's workers) as they are. Listeners are dispatched on the event's type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class StepEvent:
    """Training progress: means over the minibatches since the previous event, nats per sample.

    ``elbo = -(distortion + rate)`` is the true bound on the training minibatches (with the
    weights of each step), not the objective trained on; ``beta`` is the KL weight in effect at
    ``step`` (after warm-up); ``samples_per_s`` the training throughput over the interval
    (validation and pauses excluded).
    """

    step: int
    epoch: int
    elbo: float
    distortion: float
    rate: float
    kl_per_dim: np.ndarray
    beta: float
    lr: float
    samples_per_s: float


@dataclass
class EpochEvent:
    """The end of an epoch: training means over the epoch and validation metrics, nats per sample.

    ``val_*`` are computed on the validation set (binarised once for a Bernoulli likelihood);
    ``activity_per_dim``, ``active_units``, ``mutual_info`` (I(X;Z)) and ``marginal_kl`` come
    from ``diagnostics.latent_summary`` of its encodings, ``verdict`` from
    ``diagnostics.verdict``. ``seconds`` is the epoch's wall time, validation included.
    ``mi_ceiling`` is log N of the validation rows; when ``mi_saturated`` the I(X;Z) estimate
    is a lower estimate and the marginal KL an upper one. ``likelihood_kind``: "discrete" (the
    ELBOs bound log-probabilities: binary or dequantised 8-bit data) or "continuous" (densities).
    """

    epoch: int
    step: int
    train_elbo: float
    train_distortion: float
    train_rate: float
    val_elbo: float
    val_distortion: float
    val_rate: float
    val_kl_per_dim: np.ndarray
    activity_per_dim: np.ndarray
    active_units: int
    mutual_info: float
    marginal_kl: float
    seconds: float
    verdict: str
    collapsed_dims: list[int] = field(default_factory=list)
    mi_ceiling: float = float("nan")
    mi_saturated: bool = False
    likelihood_kind: str = "continuous"


@dataclass
class FinishedEvent:
    """The end of a run: status "finished", "stopped", "diverged" or "error", and why."""

    status: str
    message: str
    epochs_done: int
    step: int
    run_path: str | None = None


Event = StepEvent | EpochEvent | FinishedEvent
Callback = Callable[[Event], None]
