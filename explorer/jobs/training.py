"""Training one run, as a task: ``models.io.run_callback.start_run`` builds the trainer with the
run file as one of its callbacks, and this job's listener another.

:class:`TrainingJob` is the task function (``job(state)``); its partial results are, in order,
one :class:`Prepared` (the data are loaded and the run file exists), then the trainer's
``StepEvent`` and ``EpochEvent`` objects; it returns the ``FinishedEvent`` (finished, stopped,
diverged or error). ``pause``/``resume``/``stop`` set flags the trainer checks between steps
and may be called from any thread; cancelling the task stops the run.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from ..state.status import RunStatus
from ..tasks import TaskState

#: Niceness added to the training thread (Linux): the GUI thread wins the CPU when both want it,
#: and training takes every cycle the GUI leaves. Qt's QThread priorities are ignored on Linux.
TRAINING_NICE = 10

_TORCH_DEFAULT_THREADS: int | None = None


def default_torch_threads() -> int:
    """Torch threads for training in the app: all cores but one, which the GUI keeps.

    Measured (benchmarks/ui_latency.py, 2 cores): with 2 torch threads the GUI stalled up to
    ~200 ms and training ran 3x slower than with 1, as the pool's threads fought the GUI thread.
    """
    global _TORCH_DEFAULT_THREADS
    if _TORCH_DEFAULT_THREADS is None:  # torch's own choice, before anyone changed it
        import torch

        _TORCH_DEFAULT_THREADS = torch.get_num_threads()
    return max(1, min(_TORCH_DEFAULT_THREADS, (os.cpu_count() or 2) - 1))


def lower_thread_priority(nice: int) -> bool:
    """Make the calling thread ``nice`` steps nicer, where the OS allows it (Linux threads)."""
    if not sys.platform.startswith("linux") or nice <= 0:
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except (OSError, AttributeError):
        return False
    return True


@dataclass
class Prepared:
    """The run's data are loaded and its file exists."""

    config: Any  # the final RunConfig (data shape filled in)
    path: str
    total_steps: int
    dataset_info: dict


class TrainingJob:
    """Trains one run; call it with a ``TaskState`` in a task's thread."""

    def __init__(self, config: Any, run_path: str, *, force: bool = False,
                 torch_threads: int | None = None) -> None:
        self.config = config
        self.run_path = run_path
        self.force = force
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._trainer: Any = None
        self._stop_requested = False
        self._pause_requested = False

    # Any thread; the trainer's methods only set flags it checks between steps.
    def pause(self) -> None:
        with self._lock:
            self._pause_requested = True
            if self._trainer is not None:
                self._trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._pause_requested = False
            if self._trainer is not None:
                self._trainer.resume()

    def stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            if self._trainer is not None:
                self._trainer.stop()

    def __call__(self, state: TaskState) -> Any:
        from models.io.run_callback import start_run
        from models.training import EpochEvent, FinishedEvent, StepEvent

        import torch

        state.on_interruption(self.stop)
        lower_thread_priority(TRAINING_NICE)
        torch.set_num_threads(int(self.torch_threads or default_torch_threads()))
        with self._lock:
            if self._stop_requested:
                return FinishedEvent(status=RunStatus.STOPPED, message="stopped before training began",
                                     epochs_done=0, step=0)

        def on_event(event: Any) -> None:
            if isinstance(event, StepEvent | EpochEvent):
                state.set_partial_result(event)
            # FinishedEvent: once, as run()'s return value.

        # Loads and splits the data, takes the model's data shape from it.
        trainer = start_run(self.config, self.run_path, force=self.force, callbacks=[on_event])
        self.config = trainer.config
        with self._lock:
            self._trainer = trainer
            if self._pause_requested:
                trainer.pause()
            if self._stop_requested:
                trainer.stop()
        state.set_partial_result(Prepared(config=trainer.config, path=self.run_path,
                                          total_steps=int(trainer.total_steps),
                                          dataset_info=trainer.train_data.describe()))
        return trainer.run()


def default_run_path(folder: str) -> str:
    """A new run file name in ``folder``: ``<YYYYmmdd-HHMMSS>.h5`` (suffixed if taken)."""
    import time

    os.makedirs(folder, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = os.path.join(folder, f"{stamp}.h5")
    k = 2
    while os.path.exists(path):
        path = os.path.join(folder, f"{stamp}-{k}.h5")
        k += 1
    return path
