"""Training one run, as a task: the run trains in a child process (the sweep engine's local
backend), and this job follows its :class:`~models.sweep.handle.RunHandle`.

:class:`TrainingJob` is the task function (``job(state)``). It submits the run to a
:class:`~models.sweep.local.LocalBackend` of one worker (one core left to the GUI), then polls
the handle's events: its partial results are, in order, one :class:`Prepared` (the child has
loaded the data and made the run file: its ``StartEvent``), then the trainer's ``StepEvent``
and ``EpochEvent`` objects; it returns the ``FinishedEvent`` (finished, stopped, diverged,
error, or interrupted when the child died). ``pause``/``resume``/``stop`` go to the child on its
control pipe (obeyed before its next step) and may be called from any thread, before the run has
started too; cancelling the task stops the run. The GUI process loads no torch and no trainer on
this path: the child does.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

from ..tasks import TaskState

#: Niceness added to the training process (Linux): the GUI wins the CPU when both want it, and
#: training takes every cycle the GUI leaves.
TRAINING_NICE = 10

#: Seconds between two polls of the run's events (their latency to the views, at most).
POLL_S = 0.02


def lower_priority(pid: int | None, nice: int = TRAINING_NICE) -> bool:
    """Make process ``pid`` (each of its threads) ``nice`` steps nicer, where the OS allows it.
    Threads it starts later inherit the niceness of the one starting them."""
    if pid is None or not sys.platform.startswith("linux") or nice <= 0:
        return False
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    done = False
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
            done = True
        except OSError:
            pass
    return done


@dataclass
class Prepared:
    """The run's data are loaded and its file exists (in the process ``pid``)."""

    config: Any  # the final RunConfig (data shape filled in)
    path: str
    total_steps: int
    dataset_info: dict
    pid: int | None = None


def follow_handle(state: TaskState, handle: Any, on_event) -> Any:  # noqa: ANN001
    """Poll ``handle`` until its FinishedEvent, handing each event to ``on_event`` (on this
    thread); cancelling the task stops the run. Returns the FinishedEvent."""
    state.on_interruption(handle.stop)
    reniced = False
    while True:
        if not reniced and handle.pid is not None:
            lower_priority(handle.pid)
            reniced = True
        for event in handle.poll():
            on_event(event)
            if event is handle.finished:  # queued before the handle says it is done
                return event
        handle.wait(POLL_S)


class TrainingJob:
    """Trains one run in a child process; call it with a ``TaskState`` in a task's thread."""

    def __init__(self, config: Any, run_path: str, *, torch_threads: int | None = None,
                 name: str = "run") -> None:
        self.config = config
        self.run_path = run_path
        self.torch_threads = torch_threads
        self.name = name
        self.pid: int | None = None
        self._lock = threading.Lock()
        self._handle: Any = None
        self._commands: list[str] = []  # given before the handle exists

    # Any thread: the handle sends the command to the child, or remembers it until it starts.
    def pause(self) -> None:
        self._command("pause")

    def resume(self) -> None:
        self._command("resume")

    def stop(self) -> None:
        self._command("stop")

    def _command(self, what: str) -> None:
        with self._lock:
            handle = self._handle
            if handle is None:
                self._commands.append(what)
                return
        getattr(handle, what)()

    def __call__(self, state: TaskState) -> Any:
        from models.sweep.handle import threads_per_run
        from models.sweep.local import LocalBackend
        from models.training.events import EpochEvent, StartEvent, StepEvent

        threads = int(self.torch_threads or threads_per_run(1, reserve_cores=1))
        backend = LocalBackend(workers=1, threads=threads, reserve_cores=1)
        try:
            handle = backend.submit(self.config, self.run_path, name=self.name)
            with self._lock:
                self._handle = handle
                commands, self._commands = self._commands, []
            for what in commands:
                getattr(handle, what)()

            def on_event(event: Any) -> None:
                if isinstance(event, StepEvent | EpochEvent):
                    state.set_partial_result(event)
                elif isinstance(event, StartEvent):
                    self.config = event.config
                    self.pid = handle.pid
                    state.set_partial_result(Prepared(
                        config=event.config, path=self.run_path, total_steps=int(event.total_steps),
                        dataset_info=dict(event.dataset_info), pid=handle.pid))
                # Checkpoints and pauses are the run file's business; FinishedEvent: returned.

            return follow_handle(state, handle, on_event)
        finally:
            backend.close()


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
