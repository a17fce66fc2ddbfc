"""The app's actions, off the widgets: start/pause/stop training, open runs, export, diagnose.

:class:`RunController` owns the worker threads and the run watchers, creates the sessions in the
:class:`~explorer.session.RunsModel`, and reports what happens with signals: ``error(str)`` (one
line for a dialog), ``message(str)`` (for the status bar), ``stateChanged(str)`` (the training
state: idle, starting, running, paused, stopping). The main window connects menus and panels to
it; nothing here touches a widget.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from models.errors import LatentExplorerError

from .dialogs import error_line
from .session import RunSession, RunsModel
from .workers import (
    RunWatcher,
    TaskWorker,
    TrainingWorker,
    default_run_path,
    diagnose_run,
    export_run_decoder,
    start_in_thread,
    stop_child_processes,
)

#: Python's GIL switch interval (s) while a run trains in this process; see start().
TRAINING_SWITCH_INTERVAL = 0.001

#: Run statuses that end a run abnormally and are reported in a dialog.
BAD_ENDINGS = ("diverged", "error")


class RunController(QObject):
    """Training, watching, exporting and diagnosing, for the runs of a :class:`RunsModel`."""

    error = Signal(str)
    message = Signal(str)
    stateChanged = Signal(str)
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
        self._switch_interval = sys.getswitchinterval()
        self.state = "idle"
        self.training_session: RunSession | None = None
        self._worker: TrainingWorker | None = None
        self._thread: QThread | None = None
        self._watchers: dict[int, RunWatcher] = {}
        self._tasks: list[tuple[QThread, TaskWorker]] = []
        self._diag_session: RunSession | None = None
        self._export_target = ""
        runs.sessionRemoved.connect(self._session_removed)

    # ------------------------------------------------------------------ training
    @property
    def is_training(self) -> bool:
        return self._thread is not None

    def start_training(self, config: Any, path: str = "", *, force: bool = False) -> RunSession | None:
        """Start a run in a worker thread; returns its session (None if one is running already).

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
        worker = TrainingWorker(config, path, force=force, torch_threads=self.torch_threads)
        worker.prepared.connect(self._on_prepared)
        worker.step.connect(session.append_step)
        worker.epoch.connect(session.append_epoch)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        self._worker, self.training_session = worker, session
        # While training, the GUI thread asks for the GIL back after 1 ms instead of Python's
        # default 5 ms: the training thread's Python between torch calls otherwise delays the
        # GUI's timers and paints. Measured with benchmarks/ui_latency.py on 2 CPUs: training
        # p99 lateness 20.5-22.4 ms at 5 ms, 15.1-17.1 ms at 1 ms (docs/gui.md).
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(TRAINING_SWITCH_INTERVAL)
        self._thread = start_in_thread(worker, "training")
        self._thread.finished.connect(self._on_thread_finished)
        self._set_state("starting")
        self.message.emit(f"Starting {session.name}: loading {config.train.data} …")
        return session

    def pause(self) -> None:
        if self._worker is not None and self.state == "running":
            self._worker.pause()
            self.training_session.set_status("paused")
            self._set_state("paused")
            self.message.emit(f"{self.training_session.name} paused")

    def resume(self) -> None:
        if self._worker is not None and self.state == "paused":
            self._worker.resume()
            self.training_session.set_status("running")
            self._set_state("running")
            self.message.emit(f"{self.training_session.name} resumed")

    def toggle_pause(self) -> None:
        if self.state == "paused":
            self.resume()
        else:
            self.pause()

    def stop(self) -> None:
        if self._worker is not None and self.state in ("starting", "running", "paused"):
            self._worker.stop()
            self._set_state("stopping")
            self.message.emit(f"Stopping {self.training_session.name} …")

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop training and wait for the worker (the run file is then complete); stop watchers.

        Returns False if the worker did not end within ``timeout_ms``.
        """
        ok = True
        if self._thread is not None:
            if self._worker is not None:
                self._worker.stop()
            ok = self._thread.wait(timeout_ms)
            if ok:
                # Deliver the worker's last queued signals (final events, status) now.
                QCoreApplication.processEvents()
                self._on_thread_finished()
        for watcher in list(self._watchers.values()):
            watcher.stop()
        stop_child_processes()  # an export in progress: cancelled, its target left as it was
        for thread, _worker in list(self._tasks):
            ok = thread.wait(timeout_ms) and ok
        return ok

    @Slot(object)
    def _on_prepared(self, info: dict) -> None:
        s = self.training_session
        if s is None:
            return
        s.set_info(config=info.get("config"), path=info.get("path"),
                   total_steps=info.get("total_steps"), dataset_info=info.get("dataset_info"))
        s.set_status("paused" if self.state == "paused" else "running")
        if self.state == "starting":
            self._set_state("running")
        self.message.emit(f"{s.name}: training, writing {s.path}")
        self.runStarted.emit(s)

    @Slot(object)
    def _on_finished(self, event: Any) -> None:
        s = self.training_session
        if s is None:
            return
        status = getattr(event, "status", "finished")
        message = getattr(event, "message", "") or ""
        s.set_status(status, message)
        if status in BAD_ENDINGS:
            self.error.emit(f"{s.name} {status}: {message}" if message else f"{s.name} {status}")
        else:
            self.message.emit(f"{s.name} {status} after {getattr(event, 'epochs_done', '?')} epochs")

    @Slot(str)
    def _on_failed(self, line: str) -> None:
        s = self.training_session
        if s is not None:
            s.set_status("error", line)
        self.error.emit(line)

    @Slot()
    def _on_thread_finished(self) -> None:
        self._worker = None
        self._thread = None
        sys.setswitchinterval(self._switch_interval)
        self._set_state("idle")

    def _set_state(self, state: str) -> None:
        if state != self.state:
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
            watcher = RunWatcher(path, session)
        except (LatentExplorerError, OSError) as exc:
            self.error.emit(error_line(exc))
            return None
        watcher.setParent(self)
        self.runs.add(session)
        if watcher.watching:
            session.source = "watching"
            self._watchers[id(session)] = watcher
            watcher.failed.connect(self.error)
            watcher.stopped.connect(self._watcher_stopped)
            self.message.emit(f"Watching {path} (being written by another process)")
        else:
            watcher.deleteLater()
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

    @Slot(object)
    def _session_removed(self, session: RunSession) -> None:
        watcher = self._watchers.pop(id(session), None)
        if watcher is not None:
            watcher.stop()

    # ------------------------------------------------------------------ tasks
    def _run_task(self, name: str, fn, *args, result_slot, failed_slot) -> None:
        worker = TaskWorker(fn, *args)
        worker.result.connect(result_slot)
        worker.failed.connect(failed_slot)
        thread = start_in_thread(worker, name)
        entry = (thread, worker)
        self._tasks.append(entry)
        thread.finished.connect(self._task_finished)

    @Slot()
    def _task_finished(self) -> None:
        self._tasks = [(t, w) for t, w in self._tasks if not t.isFinished()]

    @property
    def export_busy(self) -> bool:
        """Whether an export is running (File > Export is disabled meanwhile)."""
        return bool(self._export_target)

    def export_decoder(self, out_path: str, session: RunSession | None = None) -> bool:
        """Export the decoder of ``session`` (default: the current run) to ONNX in a worker."""
        session = session or self.runs.current
        if session is None or not session.path:
            self.error.emit("no run to export: train or open a run first")
            return False
        if self._export_target:
            self.error.emit("an export is running already")
            return False
        self._export_target = out_path
        self.exportBusyChanged.emit(True)
        self.message.emit(f"Exporting the decoder of {session.name} to {out_path} …")
        self._run_task("export", export_run_decoder, session.path, out_path,
                       result_slot=self._on_export_done, failed_slot=self._on_export_failed)
        return True

    @Slot(object)
    def _on_export_done(self, summary: str) -> None:
        self._export_target = ""
        self.exportBusyChanged.emit(False)
        self.message.emit(f"Exported {summary}")
        self.exportFinished.emit(summary)

    @Slot(str)
    def _on_export_failed(self, line: str) -> None:
        self._export_target = ""
        self.exportBusyChanged.emit(False)
        self.error.emit(f"export failed: {line}")

    def diagnose(self, iw_samples: int = 100, max_samples: int = 2000,
                 session: RunSession | None = None) -> bool:
        """Run the full diagnosis (with the ELBO gap) of ``session`` in a worker."""
        session = session or self.runs.current
        if session is None or not session.path:
            self.error.emit("no run to diagnose: train or open a run first")
            return False
        if self._diag_session is not None:
            return False
        self._diag_session = session
        self.diagnoseBusyChanged.emit(True)
        self.message.emit(f"Diagnosing {session.name} (K = {iw_samples}) …")
        self._run_task("diagnose", diagnose_run, session.path, int(iw_samples), int(max_samples),
                       result_slot=self._on_diagnosis, failed_slot=self._on_diagnosis_failed)
        return True

    @Slot(object)
    def _on_diagnosis(self, result: dict) -> None:
        session, self._diag_session = self._diag_session, None
        self.diagnoseBusyChanged.emit(False)
        if session is not None and session in self.runs.sessions():
            session.set_diagnosis(result)
            self.message.emit(f"{session.name}: diagnosis done")

    @Slot(str)
    def _on_diagnosis_failed(self, line: str) -> None:
        self._diag_session = None
        self.diagnoseBusyChanged.emit(False)
        self.error.emit(f"diagnosis failed: {line}")
