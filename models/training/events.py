"""What a training run reports: one event type per moment, and the run's status.

In the order a run emits them: a ``StartEvent`` (what a listener needs to record the run), a
``StepEvent`` every ``log_every`` steps and at each epoch's end, per epoch a ``CheckpointEvent``
(the validated weights) then an ``EpochEvent``, a ``PauseEvent`` whenever the loop waits, and one
``FinishedEvent`` (after a last ``CheckpointEvent`` unless the run diverged). Events are plain
dataclasses of numbers, strings and numpy arrays, so they cross threads and processes (the app's
tasks, a sweep's workers) as they are. Listeners dispatch on the event's type (``isinstance`` or
``functools.singledispatch``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class RunStatus(enum.StrEnum):
    """A run's status; the run file stores its string value."""

    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    DIVERGED = "diverged"
    ERROR = "error"
    #: Still marked running, but the process that wrote it is gone (killed): never written.
    INTERRUPTED = "interrupted"


@dataclass
class StartEvent:
    """A run begins: its final configuration (``RunConfig``), the data set's ``describe()``
    (with ``n_train`` and ``n_val``), the validation rows' indices in the data set, and the
    initial weights keyed by ``state_dict`` names (their names, shapes and dtypes are those of
    every later checkpoint)."""

    config: Any
    dataset_info: dict[str, Any]
    val_indices: np.ndarray | None
    weights: Mapping[str, np.ndarray]
    total_steps: int


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
class CheckpointEvent:
    """Weights worth keeping, all finite, copied to numpy (keyed by ``state_dict`` names), from
    optimiser step ``step``: at each epoch's end after a finite validation (``final`` False),
    and once as the run ends, unless it diverged (``final`` True; not validated)."""

    step: int
    epoch: int
    weights: Mapping[str, np.ndarray]
    final: bool = False


@dataclass
class PauseEvent:
    """The loop waits between steps (paused) at ``step``: a moment for writers to flush."""

    step: int
    epoch: int


@dataclass
class FinishedEvent:
    """The end of a run: its status (finished, stopped, diverged, error; interrupted when its
    process died), and why. ``run_path`` names the run's file where one run among several ends
    (a sweep's backends set it)."""

    status: RunStatus
    message: str
    epochs_done: int
    step: int
    run_path: str | None = None


Event = StartEvent | StepEvent | CheckpointEvent | EpochEvent | PauseEvent | FinishedEvent
Callback = Callable[[Event], None]
