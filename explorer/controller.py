"""The app's actions, off the widgets: start/pause/stop training, open runs, export, diagnose.

:class:`RunController` runs every job as an :class:`explorer.tasks.Task` (the training run, the
exports and diagnoses; the run watchers follow files with tasks of their own), creates the
sessions in the :class:`~explorer.state.RunsModel`, and reports what happens with signals:
``error(str)`` (one line for a dialog), ``message(str)`` (for the status bar),
``stateChanged(object)`` (a :class:`~explorer.state.TrainingState`). The main window connects
menus and panels to it; nothing here touches a widget.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from models.errors import LatentExplorerError

from .dialogs import error_line
from .jobs.diagnose import diagnose_task
from .jobs.open_model import diagnose_model_task
from .jobs.export import export_task, stop_child_processes
from .jobs.training import Prepared, TrainingJob, default_run_path
from .state import RunSession, RunsModel, RunStatus, TrainingState
from .state.external import ModelSession
from .tasks import Task, TaskStatus, hold_fast_switching, release_fast_switching
from .watcher import RunWatcher


class RunController(QObject):
    """Training, watching, exporting and diagnosing, for the runs of a :class:`RunsModel`."""

    error = Signal(str)
    message = Signal(str)
    stateChanged = Signal(object)  # TrainingState
    runStarted = Signal(object)  # RunSession, once its run file exists
    exportFinished = Signal(str)
    diagnoseBusyChanged = Signal(bool)
    exportBusyChanged = Signal(bool)

    def __init__(self, runs: RunsModel, runs_folder: str, parent: QObject | None = None,
                 *, torch_threads: int | None = None) -> None:
        super().__init__(parent)
        self.runs = runs
        self.runs_folder = runs_folder
        self.torch_threads = torch_threads
        self.state = TrainingState.IDLE
        self.training_session: RunSession | None = None
        self._job: TrainingJob | None = None
        self._training: Task | None = None
        self._watchers: dict[int, RunWatcher] = {}
        self._tasks: set[Task] = set()  # exports and diagnoses now running
        self._export: Task | None = None
        self._export_target = ""
        self._diagnosis: Task | None = None
        self._diag_session: RunSession | None = None
        runs.sessionRemoved.connect(self._session_removed)

    # ------------------------------------------------------------------ training
    @property
    def is_training(self) -> bool:
        return self._training is not None

    def start_training(self, config: Any, path: str = "", *, force: bool = False) -> RunSession | None:
        """Start a run in a task (it trains in a child process); returns its session (None if
        one is running already).

        ``path`` is the run file to write; empty: a new file in :attr:`runs_folder`.
        """
        if self.is_training:
            self.error.emit("a run is being trained already: stop it before starting another")
            return None
        try:
            path = os.path.abspath(path) if path else default_run_path(self.runs_folder)
        except OSError as exc:
            self.error.emit(f"{self.runs_folder}: cannot create the runs folder: {exc.strerror or exc}")
            return None
        if os.path.exists(path) and not force:
            self.error.emit(f"{path}: exists already; choose another run file")
            return None
        session = RunSession(self.runs.next_name(), config=config, path=path, source="training")
        self.runs.add(session)
        self._job = TrainingJob(config, path, torch_threads=self.torch_threads, name=session.name)
        task = Task("training", self._job)
        task.partial.connect(self._on_training_event)
        task.result.connect(self._on_finished)
        task.error.connect(self._on_failed)
        task.finished.connect(self._on_training_done)
        self._training, self.training_session = task, session
        hold_fast_switching()
        task.start()
        self._set_state(TrainingState.STARTING)
        self.message.emit(f"Starting {session.name}: loading {config.train.data} …")
        return session

    def pause(self) -> None:
        if self._job is not None and self.state is TrainingState.RUNNING:
            self._job.pause()
            self.training_session.set_status(RunStatus.PAUSED)
            self._set_state(TrainingState.PAUSED)
            self.message.emit(f"{self.training_session.name} paused")

    def resume(self) -> None:
        if self._job is not None and self.state is TrainingState.PAUSED:
            self._job.resume()
            self.training_session.set_status(RunStatus.RUNNING)
            self._set_state(TrainingState.RUNNING)
            self.message.emit(f"{self.training_session.name} resumed")

    def toggle_pause(self) -> None:
        if self.state is TrainingState.PAUSED:
            self.resume()
        else:
            self.pause()

    def stop(self) -> None:
        if self._training is not None and self.state.stoppable:
            self._training.cancel()  # the job's stop: the trainer ends within one step
            self._set_state(TrainingState.STOPPING)
            self.message.emit(f"Stopping {self.training_session.name} …")

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop training and wait for it (the run file is then complete); cancel every other
        task (an export's target is left as it was) and wait for them.

        Returns False if a task did not end within ``timeout_ms``.
        """
        for watcher in list(self._watchers.values()):
            watcher.stop()
        tasks = [t for t in (self._training, *self._tasks) if t is not None]
        tasks += [w.task for w in self._watchers.values() if w.task is not None]
        for task in tasks:
            task.cancel()  # an export's child process gets SIGTERM within 0.1 s
        ok = True
        for task in tasks:
            ok = task.wait(timeout_ms) and ok
        stop_child_processes()  # none left unless a task timed out
        return ok

    @Slot(object)
    def _on_training_event(self, event: Any) -> None:
        s = self.training_session
        if s is None:
            return
        if isinstance(event, Prepared):
            self._on_prepared(s, event)
        elif type(event).__name__ == "StepEvent":
            s.append_step(event)
        else:
            s.append_epoch(event)

    def _on_prepared(self, s: RunSession, info: Prepared) -> None:
        s.pid = info.pid  # the child process training it
        s.set_info(config=info.config, path=info.path, total_steps=info.total_steps,
                   dataset_info=info.dataset_info)
        s.set_status(RunStatus.PAUSED if self.state is TrainingState.PAUSED else RunStatus.RUNNING)
        if self.state is TrainingState.STARTING:
            self._set_state(TrainingState.RUNNING)
        self.message.emit(f"{s.name}: training, writing {s.path}")
        self.runStarted.emit(s)

    @Slot(object)
    def _on_finished(self, event: Any) -> None:
        s = self.training_session
        if s is None:
            return
        status = RunStatus.parse(getattr(event, "status", "finished"))
        message = getattr(event, "message", "") or ""
        s.set_status(status, message)
        if status.bad:
            self.error.emit(f"{s.name} {status}: {message}" if message else f"{s.name} {status}")
        else:
            self.message.emit(f"{s.name} {status} after {getattr(event, 'epochs_done', '?')} epochs")

    @Slot(str)
    def _on_failed(self, line: str) -> None:
        s = self.training_session
        if s is not None:
            s.set_status(RunStatus.ERROR, line)
        self.error.emit(line)

    @Slot(object)
    def _on_training_done(self, _status: TaskStatus) -> None:
        # The task module keeps the task referenced until after this signal: dropping ours is safe.
        self._job = None
        self._training = None
        release_fast_switching()
        self._set_state(TrainingState.IDLE)

    def _set_state(self, state: TrainingState) -> None:
        if state is not self.state:
            self.state = state
            self.stateChanged.emit(state)

    # ------------------------------------------------------------------ run files
    def open_run(self, path: str) -> RunSession | None:
        """Open a run file; one still being written is watched and its plots grow."""
        path = os.path.abspath(path)
        existing = self.runs.find(path)
        if existing is not None:
            self.runs.set_current(existing)
            return existing
        name = os.path.splitext(os.path.basename(path))[0]
        session = RunSession(name, path=path, source="file")
        try:
            watcher = RunWatcher(path, session, parent=self)
        except (LatentExplorerError, OSError) as exc:
            self.error.emit(error_line(exc))
            return None
        self.runs.add(session)
        if watcher.watching:  # following it, or reading a long file's rows in the background
            session.source = "watching" if watcher.following else session.source
            self._watchers[id(session)] = watcher
            watcher.failed.connect(self.error)
            watcher.stopped.connect(self._watcher_stopped)
            self.message.emit(f"Watching {path} (being written by another process)"
                              if watcher.following else f"Reading {path}…")
        else:
            watcher.deleteLater()  # a GUI-thread object with no task: nothing in flight
            self.message.emit(f"Opened {path}: {session.status}, {len(session.epochs)} epochs")
        return session

    def watcher_for(self, session: RunSession) -> RunWatcher | None:
        return self._watchers.get(id(session))

    @Slot()
    def _watcher_stopped(self) -> None:
        for key, watcher in list(self._watchers.items()):
            if not watcher.watching:
                self._watchers.pop(key, None)
                self.message.emit(f"{watcher.session.name}: {watcher.session.status}")
                watcher.deleteLater()

    @Slot(object)
    def _session_removed(self, session: RunSession) -> None:
        watcher = self._watchers.get(id(session))
        if watcher is not None:
            watcher.stop()

    # ------------------------------------------------------------------ one-off tasks
    def _run_task(self, name: str, fn, *args, on_result, on_error, on_done) -> Task:
        task = Task(name, fn, *args)
        task.result.connect(on_result)
        task.error.connect(on_error)
        task.finished.connect(on_done)
        task.finished.connect(self._task_done)
        self._tasks.add(task)
        return task.start()

    @Slot(object)
    def _task_done(self, _status: TaskStatus) -> None:
        self._tasks = {t for t in self._tasks if not t.status.done}

    @property
    def export_busy(self) -> bool:
        """Whether an export is running (File > Export is disabled meanwhile)."""
        return self._export is not None

    def export_decoder(self, out_path: str, session: RunSession | None = None) -> bool:
        """Export the decoder of ``session`` (default: the current run) to ONNX in a task."""
        session = session or self.runs.current
        if session is None or not session.path:
            self.error.emit("no run to export: train or open a run first")
            return False
        if self._export is not None:
            self.error.emit("an export is running already")
            return False
        self._export_target = out_path
        self.message.emit(f"Exporting the decoder of {session.name} to {out_path} …")
        self._export = self._run_task("export", export_task, session.path, out_path,
                                      on_result=self._on_export_done,
                                      on_error=self._on_export_failed,
                                      on_done=self._on_export_ended)
        self.exportBusyChanged.emit(True)
        return True

    def cancel_export(self) -> None:
        """Interrupt the export in progress; the file it would have replaced stays as it was."""
        if self._export is not None:
            self._export.cancel()

    @Slot(object)
    def _on_export_done(self, summary: str) -> None:
        self.message.emit(f"Exported {summary}")
        self.exportFinished.emit(summary)

    @Slot(str)
    def _on_export_failed(self, line: str) -> None:
        self.error.emit(f"export failed: {line}")

    @Slot(object)
    def _on_export_ended(self, status: TaskStatus) -> None:
        if status is TaskStatus.CANCELLED:
            self.message.emit(f"Export to {self._export_target} cancelled; nothing was written")
        self._export, self._export_target = None, ""
        self.exportBusyChanged.emit(False)

    @property
    def diagnose_busy(self) -> bool:
        return self._diagnosis is not None

    def diagnose(self, iw_samples: int = 100, max_samples: int = 2000,
                 session: RunSession | None = None) -> bool:
        """Run the full diagnosis (with the ELBO gap) of ``session`` (the current one by default:
        a run, or a model opened from an ONNX pair) in a task."""
        session = session or self.runs.current
        if isinstance(session, ModelSession):  # an opened ONNX pair: diagnosed from its files
            job: tuple = ("diagnose-model", diagnose_model_task, session.model)
        elif session is None or not session.path:
            self.error.emit("no run to diagnose: train or open a run first")
            return False
        else:
            job = ("diagnose", diagnose_task, session.path)
        if self._diagnosis is not None:
            return False
        self._diag_session = session
        self.message.emit(f"Diagnosing {session.name} (K = {iw_samples}) …")
        self._diagnosis = self._run_task(*job, int(iw_samples),
                                         int(max_samples), on_result=self._on_diagnosis,
                                         on_error=self._on_diagnosis_failed,
                                         on_done=self._on_diagnosis_ended)
        self.diagnoseBusyChanged.emit(True)
        return True

    def cancel_diagnosis(self) -> None:
        """Stop the diagnosis in progress (between two batches)."""
        if self._diagnosis is not None:
            self._diagnosis.cancel()

    @Slot(object)
    def _on_diagnosis(self, result: dict) -> None:
        session = self._diag_session
        if session is not None and session in self.runs.sessions():
            session.set_diagnosis(result)
            self.message.emit(f"{session.name}: diagnosis done")

    @Slot(str)
    def _on_diagnosis_failed(self, line: str) -> None:
        self.error.emit(f"diagnosis failed: {line}")

    @Slot(object)
    def _on_diagnosis_ended(self, status: TaskStatus) -> None:
        if status is TaskStatus.CANCELLED and self._diag_session is not None:
            self.message.emit(f"{self._diag_session.name}: diagnosis cancelled")
        self._diagnosis, self._diag_session = None, None
        self.diagnoseBusyChanged.emit(False)
