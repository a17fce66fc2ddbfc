"""Background work, adapted to Qt: training, following a run file, exporting, diagnosing.

The engine (``models/``) does the work in plain Python; these classes only move it off the GUI
thread and turn its results into signals. A worker is a ``QObject`` moved to a ``QThread`` that
has no parent; it never touches a widget. Its signals are delivered to slots of objects that live
on the GUI thread (queued connections), where the sessions and views are updated.

- :class:`TrainingWorker` runs ``models.training.Trainer`` (which writes the run file) and emits
  its step, epoch and finished events. ``pause``/``resume``/``stop`` map to the trainer's methods,
  which take effect within one step; they may be called from any thread.
- :class:`RunWatcher` follows a run file that another process writes (``latent-explorer train``):
  a timer on the GUI thread calls ``RunReader.refresh()`` and appends the new rows to a session.
- :class:`TaskWorker` runs one function (ONNX export, diagnosis) and emits its result or error.
- :func:`start_in_thread` wires a worker to a fresh thread and cleans both up when it is done.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from models.errors import LatentExplorerError

from .dialogs import error_line
from .session import RunSession

# --------------------------------------------------------------------------- threads

#: Niceness added to the training thread (Linux): the GUI thread wins the CPU when both want it,
#: and training takes every cycle the GUI leaves. Qt's QThread priorities are ignored on Linux.
TRAINING_NICE = 10


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


_TORCH_DEFAULT_THREADS: int | None = None


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



def start_in_thread(worker: QObject, name: str) -> QThread:
    """Move ``worker`` to a new parentless QThread, start ``worker.run`` there, clean up after.

    The worker must have a ``run`` slot and a ``done`` signal emitted last. The thread quits when
    ``done`` is emitted; both objects are deleted once the thread has finished. Keep a Python
    reference to the returned thread (and the worker) until then.
    """
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)  # wait() may block the GUI thread
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread


# --------------------------------------------------------------------------- training


class TrainingWorker(QObject):
    """Trains one run in a worker thread; the trainer writes the run file as it goes.

    Signals (emitted from the worker thread; connect them to GUI-thread slots):

    ``prepared(dict)``
        the data are loaded and the run file exists: ``config`` (the final ``RunConfig``, data
        shape filled in), ``path``, ``total_steps``, ``dataset_info``.
    ``step(object)``, ``epoch(object)``
        a ``models.training.StepEvent`` / ``EpochEvent``.
    ``finished(object)``
        the ``FinishedEvent`` (status finished, stopped, diverged or error) when ``Trainer.run``
        returns.
    ``failed(str)``
        the run could not start or broke off with an exception: one line for the user.
    ``done()``
        always last.
    """

    prepared = Signal(object)
    step = Signal(object)
    epoch = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, config: Any, run_path: str, *, force: bool = False,
                 torch_threads: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.run_path = run_path
        self.force = force
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._trainer: Any = None
        self._stop_requested = False
        self._pause_requested = False

    # Called from the GUI thread; the trainer's methods only set flags it checks between steps.
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

    @Slot()
    def run(self) -> None:
        try:
            self._run()
        except LatentExplorerError as exc:
            self.failed.emit(error_line(exc))
        except MemoryError:
            self.failed.emit("out of memory: try a smaller batch size, model or data set")
        except Exception as exc:  # a bug: keep the traceback on stderr, tell the user one line
            traceback.print_exc(file=sys.stderr)
            self.failed.emit(error_line(exc))
        finally:
            self.done.emit()

    def _run(self) -> None:
        from models.io.run_callback import start_run

        import torch

        lower_thread_priority(TRAINING_NICE)
        torch.set_num_threads(int(self.torch_threads or default_torch_threads()))
        with self._lock:
            if self._stop_requested:
                self.finished.emit(_finished_event("stopped", "stopped before training began"))
                return
        # Loads and splits the data, takes the model's data shape from it.
        trainer = start_run(self.config, self.run_path, force=self.force,
                            callbacks=[self._on_event])
        self.config = trainer.config
        with self._lock:
            self._trainer = trainer
            if self._pause_requested:
                trainer.pause()
            if self._stop_requested:
                trainer.stop()
        self.prepared.emit({
            "config": trainer.config,
            "path": self.run_path,
            "total_steps": int(trainer.total_steps),
            "dataset_info": trainer.train_data.describe(),
        })
        result = trainer.run()
        self.finished.emit(result)

    def _on_event(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "StepEvent":
            self.step.emit(event)
        elif kind == "EpochEvent":
            self.epoch.emit(event)
        # FinishedEvent: emitted once, from run()'s return value.


def _finished_event(status: str, message: str) -> Any:
    from models.training import FinishedEvent

    return FinishedEvent(status=status, message=message, epochs_done=0, step=0)


# --------------------------------------------------------------------------- watching


class RunWatcher(QObject):
    """Follows a run file: loads what it holds, then polls for new rows while it is running.

    Reads happen on the GUI thread but touch only the new rows' lengths and the status (a few
    small HDF5 reads), every ``interval_ms``. Polling stops when the run's status is no longer
    ``running``; :attr:`reader` is then closed.

    Signals: ``failed(str)`` when the file becomes unreadable; ``stopped()`` when watching ends.
    """

    failed = Signal(str)
    stopped = Signal()

    def __init__(self, path: str, session: RunSession, interval_ms: int = 500,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        from models.io.runfile import RunReader

        self.path = path
        self.session = session
        self.reader = RunReader(path)  # raises RunFileError with one line
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.poll)
        try:  # the first read raises (RunFileError, one line) instead of signalling
            session.set_info(config=self.reader.config, path=path,
                             dataset_info=self.reader.dataset_info,
                             total_steps=_total_steps(self.reader))
            self._append_new_rows()
        except BaseException:
            self.reader.close()
            self.reader = None
            raise
        session.set_status(*self._status())
        if session.status == "running":
            self.timer.start()
        else:
            self._finish()

    def _status(self) -> tuple[str, str]:
        """The file's status and message; ``interrupted`` when it says running but its writer,
        on this machine, is gone (killed): nothing more will come."""
        status, message = self.reader.status, self.reader.message
        if status == "running" and self.reader.writer_alive() is False:
            pid = self.reader.writer[1]
            return "interrupted", (f"the process that wrote it (pid {pid}) ended without closing "
                                   "it; it holds every epoch flushed before")
        return status, message

    @property
    def watching(self) -> bool:
        return self.timer.isActive()

    @Slot()
    def poll(self) -> bool:
        """Read new rows (if any) into the session; returns whether rows arrived."""
        if self.reader is None:
            return False
        try:
            self.reader.refresh()
            grew = self._append_new_rows()
            status, message = self._status()
        except (LatentExplorerError, OSError) as exc:
            self.timer.stop()
            self.failed.emit(error_line(exc))
            self._finish()
            return False
        self.session.set_status(status, message)
        if status != "running" and self.timer.isActive():
            self._finish()
        return grew

    def _append_new_rows(self) -> bool:
        grew = False
        s = self.session
        if self.reader.n_steps > len(s.steps):  # read the new rows only
            steps = self.reader.steps(start=len(s.steps))
            s.extend_steps({k: v for k, v in steps.items() if v.dtype != object})
            grew = True
        if self.reader.n_epochs > len(s.epochs):
            epochs = self.reader.epochs(start=len(s.epochs))
            verdicts = [str(v) for v in epochs.get("verdict", np.array([], dtype=object))]
            s.extend_epochs({k: v for k, v in epochs.items() if v.dtype != object}, verdicts)
            grew = True
        return grew

    def stop(self) -> None:
        """Stop polling and close the file."""
        self.timer.stop()
        self._finish()

    def _finish(self) -> None:
        self.timer.stop()
        if self.reader is not None:
            self.reader.close()
            self.reader = None
            self.stopped.emit()


def _total_steps(reader: Any) -> int | None:
    """Steps the run will take: epochs x ceil(training rows / batch size), when recorded."""
    cfg = reader.config
    n_train = (reader.dataset_info or {}).get("n_train")
    if not n_train:
        return None
    return -(-int(n_train) // int(cfg.train.batch_size)) * int(cfg.train.epochs)


# --------------------------------------------------------------------------- one-off tasks


class TaskWorker(QObject):
    """Runs ``fn(*args, **kwargs)`` in a worker thread: ``result(object)`` or ``failed(str)``, then ``done()``."""

    result = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.fn, self.args, self.kwargs = fn, args, kwargs

    @Slot()
    def run(self) -> None:
        try:
            self.result.emit(self.fn(*self.args, **self.kwargs))
        except LatentExplorerError as exc:
            self.failed.emit(error_line(exc))
        except MemoryError:
            self.failed.emit("out of memory")
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.failed.emit(error_line(exc))
        finally:
            self.done.emit()


#: Export child processes now running (see :func:`stop_child_processes`).
_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.Lock()


def stop_child_processes(grace: float = 10.0) -> None:
    """Interrupt every export child process (SIGINT where there is one: its clean-up then
    removes its temporary file, and the file it would have replaced stays as it was); kill any
    still running after ``grace`` seconds. Called when the app closes."""
    import signal

    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for proc in children:
        try:
            if os.name == "posix":
                proc.send_signal(signal.SIGINT)
            else:
                proc.terminate()
        except OSError:
            pass
    for proc in children:
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()


def export_run_decoder(run_path: str, out_path: str, encoder_path: str | None = None,
                       timeout: float = 900.0) -> str:
    """Export the decoder (and optionally the encoder) of a run file's last saved weights.

    Runs ``latent-explorer export RUN --decoder OUT --force`` in a child process: the ONNX
    exporter (``torch.export``) changes torch's global operator tables while it traces, which
    deadlocked against a run training in another thread of the app. In its own process it
    cannot. The export is verified against torch and written atomically by
    ``models.io.onnx_export``; returns its one-line summary, or raises ``ExportError`` with the
    command's one-line error.
    """
    from models.errors import ExportError

    cmd = [sys.executable, "-c", "import sys; from models.cli import main; sys.exit(main())",
           "export", os.fspath(run_path), "--decoder", os.fspath(out_path), "--force"]
    if encoder_path:
        cmd += ["--encoder", os.fspath(encoder_path)]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where models/ lives
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ExportError(f"{out_path}: the export took longer than {timeout:.0f} s") from None
    finally:
        with _CHILDREN_LOCK:
            _CHILDREN.discard(proc)
    if proc.returncode in (130, -2, -15, -9):  # interrupted (the app is closing)
        raise ExportError(f"{out_path}: the export was cancelled; nothing was written")
    if proc.returncode != 0:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        line = lines[-1] if lines else f"exit status {proc.returncode}"
        raise ExportError(line.removeprefix("latent-explorer export: error: "))
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
    return "; ".join(lines) or f"decoder -> {out_path}"


def diagnose_run(run_path: str, iw_samples: int = 100, max_samples: int = 2000,
                 seed: int = 0) -> dict:
    """The full diagnosis (``models.diagnostics.diagnose``) of a run on its validation data.

    Uses the run file's last saved weights and the run's validation rows, read and binarised
    exactly as ``latent-explorer diagnose`` does; ``max_samples`` (0: all) takes a seeded subset.
    Returns ``Diagnosis.to_json_dict()``.
    """
    import torch

    from models.data import validation_rows
    from models.diagnostics import diagnose
    from models.io.runfile import RunReader

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with RunReader(run_path) as reader:
        config = reader.config
        vae = reader.load_model(device)
        x = validation_rows(reader, max_samples=int(max_samples) if max_samples else None, seed=seed).x
    result = diagnose(vae, x, config.objective, iw_samples=int(iw_samples), seed=seed)
    return result.to_json_dict()


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


__all__ = [
    "RunWatcher",
    "TaskWorker",
    "TrainingWorker",
    "default_run_path",
    "diagnose_run",
    "export_run_decoder",
    "start_in_thread",
]
