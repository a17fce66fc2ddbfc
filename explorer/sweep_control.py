"""Sweeps and remedy runs from the app: starts the sweep task, feeds one session per run.

:class:`SweepController` runs a :class:`~explorer.jobs.sweep.SweepJob` as a task and turns its
events into :class:`~explorer.state.RunSession` objects in the :class:`~explorer.state.RunsModel`
(one per run, tagged with the sweep's folder and the run's settings, for the frontier and the
runs table). Runs the sweep had finished before (a sweep resumed in its folder) are opened from
their files at the end. Nothing here touches a widget: ``error(str)`` and ``message(str)`` go to
the window, ``busyChanged(bool)`` enables the actions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from .jobs.sweep import SweepEvent, SweepJob, SweepResult
from .jobs.training import Prepared
from .state import RunSession, RunsModel, RunStatus
from .tasks import Task, TaskStatus, hold_fast_switching, release_fast_switching


class SweepController(QObject):
    """One sweep at a time, its runs as sessions of ``runs``.

    ``open_run(path) -> RunSession | None`` opens a run file (the window's controller's), for
    the runs of a resumed sweep that were done already.
    """

    error = Signal(str)
    message = Signal(str)
    busyChanged = Signal(bool)
    progress = Signal(int, int)

    def __init__(self, runs: RunsModel, open_run: Callable[[str], RunSession | None],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self._open_run = open_run
        self._task: Task | None = None
        self._job: SweepJob | None = None
        self._sessions: dict[str, RunSession] = {}  # by run file
        self.paused = False

    @property
    def busy(self) -> bool:
        return self._task is not None

    def start(self, job: SweepJob) -> bool:
        """Run ``job`` in a task; False (and one error) if a sweep is running already."""
        if self.busy:
            self.error.emit("a sweep is running already: stop it before starting another")
            return False
        self._job, self._sessions, self.paused = job, {}, False
        task = Task("sweep", job)
        task.partial.connect(self._on_event)
        task.progress.connect(self.progress)
        task.result.connect(self._on_result)
        task.error.connect(self._on_failed)
        task.finished.connect(self._on_done)
        self._task = task
        hold_fast_switching()  # the sweep's runs stream their events live, as one run's do
        task.start()
        self.busyChanged.emit(True)
        self.message.emit(f"Sweep of {len(job.spec.runs)} runs ({job.spec.describe()}) into "
                          f"{job.folder} on {job.backend}, {job.workers} at once …")
        return True

    def stop(self) -> None:
        """Stop every run of the sweep within one step; their files stay complete."""
        if self._task is not None:
            self._task.cancel()
            self.message.emit("Stopping the sweep …")

    def toggle_pause(self) -> None:
        if self._job is None:
            return
        self.paused = not self.paused
        (self._job.pause if self.paused else self._job.resume)()
        for s in self._sessions.values():
            if s.status in (RunStatus.RUNNING, RunStatus.PAUSED):
                s.set_status(RunStatus.PAUSED if self.paused else RunStatus.RUNNING)
        self.message.emit("Sweep paused" if self.paused else "Sweep resumed")

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        if self._task is None:
            return True
        self._task.cancel()
        return self._task.wait(timeout_ms)

    # ------------------------------------------------------------------ the task's signals
    def _session(self, name: str, path: str, settings: dict, config: Any = None) -> RunSession:
        s = self._sessions.get(path)
        if s is None:
            s = RunSession(self.runs.unique_name(name), config=config, path=path, source="training")
            s.sweep, s.settings = os.path.dirname(path), dict(settings)
            self._sessions[path] = s
            self.runs.add(s, make_current=self.runs.current is None)
        return s

    @Slot(object)
    def _on_event(self, item: SweepEvent) -> None:
        ev = item.event
        s = self._session(item.name, item.path, item.settings,
                          ev.config if isinstance(ev, Prepared) else None)
        kind = type(ev).__name__
        if isinstance(ev, Prepared):
            s.pid = ev.pid
            s.set_info(config=ev.config, path=ev.path, total_steps=ev.total_steps,
                       dataset_info=ev.dataset_info)
            s.set_status(RunStatus.PAUSED if self.paused else RunStatus.RUNNING)
        elif kind == "StepEvent":
            s.append_step(ev)
        elif kind == "EpochEvent":
            s.append_epoch(ev)
        elif kind == "FinishedEvent":
            status = RunStatus.parse(ev.status)
            s.set_status(status, ev.message or "")
            self.message.emit(f"{s.name}: {status}" + (f" ({ev.message})" if ev.message else ""))

    @Slot(object)
    def _on_result(self, results: list[SweepResult]) -> None:
        bad = []
        for r in results:
            s = self._sessions.get(r.path)
            if s is None and os.path.exists(r.path):  # done before: read from its file
                s = self.runs.find(r.path) or self._open_run(r.path)
                if s is not None:
                    s.sweep, s.settings = os.path.dirname(r.path), dict(r.settings)
                    s.infoChanged.emit()
            if RunStatus.parse(r.status).bad:
                bad.append(f"{r.name}: {r.status} ({r.message})" if r.message else f"{r.name}: {r.status}")
        if bad:
            self.error.emit("sweep: " + "; ".join(bad))
        else:
            self.message.emit(f"Sweep done: {len(results)} runs in "
                              f"{os.path.dirname(results[0].path) if results else ''}")

    @Slot(str)
    def _on_failed(self, line: str) -> None:
        self.error.emit(f"sweep failed: {line}")

    @Slot(object)
    def _on_done(self, status: TaskStatus) -> None:
        for s in self._sessions.values():
            if s.status.live:  # never reported its end (the sweep failed)
                s.set_status(RunStatus.INTERRUPTED, "the sweep ended before this run did")
        if status is TaskStatus.CANCELLED:
            self.message.emit("Sweep stopped")
        self._task, self._job, self.paused = None, None, False
        release_fast_switching()
        self.busyChanged.emit(False)
