"""A sweep, as a task: :class:`~models.sweep.runner.Sweep` trains its runs out of process
(local child processes, or Ray workers) and this job hands their events to the GUI thread.

:class:`SweepJob` is the task function. Its partial results are :class:`SweepEvent` objects,
one per event of one run, in each run's order: a :class:`~explorer.jobs.training.Prepared`
(the run's ``StartEvent``: its data loaded, its file made), its ``StepEvent`` and
``EpochEvent`` objects, and its ``FinishedEvent``. It returns the manifest's records as
:class:`SweepResult` rows (the runs done before are among them, with no events). Cancelling the
task stops every run within one step (``Sweep.stop``); ``pause``/``resume`` go to every run.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from ..tasks import TaskState
from .training import Prepared, lower_priority

#: The sweep dialog's backends.
BACKENDS = ("local", "ray")


@dataclass
class SweepEvent:
    """One event of the run ``name`` of a sweep (its file ``path``, its varied ``settings``)."""

    name: str
    path: str
    settings: dict[str, Any]
    event: Any


@dataclass
class SweepResult:
    """A run of the sweep as the manifest has it at the end."""

    name: str
    path: str
    settings: dict[str, Any]
    status: str
    message: str = ""


@dataclass
class SweepJob:
    """Trains the runs of ``spec`` into ``folder`` on ``backend`` (``local`` or ``ray``)."""

    spec: Any  # models.sweep.SweepSpec
    folder: str
    backend: str = "local"
    workers: int = 1
    address: str | None = None  # Ray: None (a local instance), "auto" or "ray://HOST:PORT"
    threads: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sweep: Any = field(default=None, repr=False)
    _paused: bool = field(default=False, repr=False)

    def pause(self) -> None:
        self._command(True)

    def resume(self) -> None:
        self._command(False)

    def _command(self, pause: bool) -> None:
        with self._lock:
            self._paused = pause
            sweep = self._sweep
        for handle in list(sweep.handles.values()) if sweep is not None else ():
            handle.pause() if pause else handle.resume()

    def _make_backend(self) -> Any:
        if self.backend == "ray":
            from models.sweep.ray_backend import RayBackend

            return RayBackend(self.workers, address=self.address or None, threads=self.threads)
        from models.sweep.local import LocalBackend

        return LocalBackend(workers=self.workers, threads=self.threads, reserve_cores=1)

    def __call__(self, state: TaskState) -> list[SweepResult]:
        from models.sweep.runner import Sweep
        from models.training.events import EpochEvent, FinishedEvent, StartEvent, StepEvent

        sweep = Sweep(self.spec, self.folder)
        with self._lock:
            self._sweep = sweep
        state.on_interruption(sweep.stop)
        state.raise_if_interrupted()
        backend = self._make_backend()
        reniced: set[int] = set()
        done = 0
        total = len(self.spec.runs)
        state.set_progress(0, total)

        def on_event(record: Any, ev: Any) -> None:
            nonlocal done
            path = os.path.join(sweep.folder, record.file)
            handle = sweep.handles.get(record.name)
            pid = getattr(handle, "pid", None)
            if self.backend == "local" and pid is not None and pid not in reniced:
                reniced.add(pid)
                lower_priority(pid)
            if isinstance(ev, StartEvent):
                if self._paused and handle is not None:
                    handle.pause()
                ev = Prepared(config=ev.config, path=path, total_steps=int(ev.total_steps),
                              dataset_info=dict(ev.dataset_info), pid=pid)
            elif isinstance(ev, FinishedEvent):
                done += 1
                state.set_progress(done, total)
            elif not isinstance(ev, StepEvent | EpochEvent):
                return  # checkpoints and pauses: the run file's business
            state.set_partial_result(SweepEvent(record.name, path, dict(record.settings), ev))

        try:
            records = sweep.run(backend, on_event=on_event)
        finally:
            backend.close()
        return [SweepResult(r.name, os.path.join(sweep.folder, r.file), dict(r.settings),
                            r.status.value, r.message) for r in records]
