"""Background tasks: the one way the app runs work off the GUI thread.

A task is a plain Python function that receives a :class:`TaskState` first::

    def work(state: TaskState, path: str) -> Result:
        for i, batch in enumerate(batches):
            if state.is_interruption_requested():
                raise Cancelled()
            ...
            state.set_progress(i + 1, len(batches))
            state.set_partial_result(something_to_show_now)
        return result

and :class:`Task` runs it in a thread of its own and delivers, on the GUI thread, in this order:
``started()``, any number of ``progress(done, total)`` and ``partial(object)``, then exactly one
of ``result(object)``, ``error(str)`` or ``cancelled()``, and last ``finished(TaskStatus)``.
This is Orange's ``TaskState`` (``Orange/widgets/utils/concurrent.py``) and superqt's
``thread_worker``, reduced to what the app needs.

The function never touches a Qt object: it reads its arguments and reports plain data (numbers,
numpy arrays, dataclasses), and the slots connected to the task's signals update the sessions and
views on the GUI thread. A ``Task`` is created, started, cancelled and connected on the GUI thread.

One error path. Whatever the function raises becomes one line for a dialog
(``explorer.dialogs.error_line``): a ``LatentExplorerError`` carries its own line; a
``MemoryError`` says to try something smaller; any other exception is a bug, so its traceback goes
to stderr and the user gets ``TypeName: message``. Nothing a task raises crashes the app.

Cancel. :meth:`Task.cancel` sets a flag the function polls with
:meth:`TaskState.is_interruption_requested` (or sleeps on with :meth:`TaskState.wait`) and calls
the callbacks it registered with :meth:`TaskState.on_interruption` (e.g. ``Trainer.stop``). A
function that stops early raises :class:`Cancelled`: the task then ends ``CANCELLED``. One that
returns anyway (a stopped training run returns its ``FinishedEvent``) ends ``FINISHED``.

Lifetime rules (the reason this module exists: breaking them crashed the app)
--------------------------------------------------------------------------------
Qt emits ``QThread.finished`` from the finishing thread *before* that thread is done with the
QThread: it still runs ``QThreadPrivate::finish`` (deferred deletes of objects living in the
thread, the event dispatcher's destruction), and ``isFinished()`` is already true meanwhile.
The old code connected ``finished`` to the worker's ``deleteLater`` *and* let Python own the same
worker, then dropped its Python references in a slot of ``finished``: two owners deleting one
object on two threads, and a QThread destroyed while its thread was still in ``finish`` (a
segfault in ``Shiboken::Object::destroy`` on the finishing thread, a bus error in the GUI thread's
slot). Here:

1. The QThread is parentless and owned by Python only, through its :class:`Task`; nothing calls
   ``deleteLater`` on it, so it has exactly one owner and is deleted on the GUI thread.
2. Every live task is referenced from :data:`_LIVE` from :meth:`Task.start` until after its
   ``finished`` signal has been delivered, whoever else holds it.
3. When ``QThread.finished`` reaches the task (queued, on the GUI thread, after every progress and
   partial signal the thread emitted), the task first ``wait()``\\ s for the thread to leave
   ``finish`` (microseconds; ``QThread.wait`` releases the GIL), then emits its outcome.
4. The references are dropped in a slot queued *after* that (``QTimer.singleShot(0, ...)``), never
   inside a slot of the object being released: the thread is then deleted by the GUI thread,
   with no signal of it in flight.
5. From the first task on, Python's cyclic garbage collector runs on the GUI thread only
   (:mod:`explorer.collector`): a widget in a reference cycle is never released by a task thread.
"""

from __future__ import annotations

import atexit
import enum
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal, Slot

from models.errors import LatentExplorerError

from . import collector
from .dialogs import error_line

#: Every task started and not yet released (rule 2 above).
_LIVE: set[Task] = set()

#: Tasks started in this process (for tests and the stress script).
STARTED = 0

#: Python's GIL switch interval (s) while the app follows live runs (:func:`hold_fast_switching`).
LIVE_SWITCH_INTERVAL = 0.001
_switch_holds = 0
_switch_saved = 0.005


def hold_fast_switching() -> None:
    """While a task streams a live run's events (one run, or a sweep's), the GUI thread asks for
    the GIL back after 1 ms instead of Python's default 5 ms: the task threads' Python (reading
    and decoding events) otherwise delays the GUI's timers and paints. Measured with
    benchmarks/ui_latency.py on 2 CPUs, one run: p99 lateness 20.5-22.4 ms at 5 ms, 15.1-17.1 ms
    at 1 ms (docs/gui.md). Holds nest; the last :func:`release_fast_switching` restores it."""
    global _switch_holds, _switch_saved
    if _switch_holds == 0:
        _switch_saved = sys.getswitchinterval()
        sys.setswitchinterval(LIVE_SWITCH_INTERVAL)
    _switch_holds += 1


def release_fast_switching() -> None:
    global _switch_holds
    if _switch_holds == 0:
        return
    _switch_holds -= 1
    if _switch_holds == 0:
        sys.setswitchinterval(_switch_saved)


class TaskStatus(enum.Enum):
    """Where a task is; compare by member (``task.status is TaskStatus.FAILED``)."""

    PENDING = "pending"  # made, not started
    RUNNING = "running"  # started, its outcome not yet delivered
    FINISHED = "finished"  # the function returned; ``Task.value`` holds what it returned
    FAILED = "failed"  # it raised; ``Task.error_line`` says what happened, in one line
    CANCELLED = "cancelled"  # it raised Cancelled after a cancel

    @property
    def done(self) -> bool:
        return self in (TaskStatus.FINISHED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class Cancelled(Exception):
    """Raised by a task function that stopped because it was asked to."""


def failure_line(exc: BaseException) -> str:
    """The one line a failed task reports (see the module docstring); logs what is a bug."""
    if isinstance(exc, MemoryError):
        return "out of memory: try a smaller batch size, model or data set"
    if not isinstance(exc, (LatentExplorerError, OSError)):
        traceback.print_exception(exc, file=sys.stderr)
    return error_line(exc)


class TaskState:
    """What a task function sees of its task. Every method may be called from any thread."""

    def __init__(self) -> None:
        self._interrupt = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._thread: _TaskThread | None = None

    # --- the function reports
    def set_progress(self, done: int, total: int = 0) -> None:
        """``done`` of ``total`` units (0: unknown) are done; shown as a progress bar."""
        if self._thread is not None:
            self._thread.progressed.emit(int(done), int(total))

    def set_partial_result(self, value: Any) -> None:
        """Something to show before the end (a training event, rows read from a file)."""
        if self._thread is not None:
            self._thread.partial.emit(value)

    # --- the function checks
    def is_interruption_requested(self) -> bool:
        return self._interrupt.is_set()

    def raise_if_interrupted(self) -> None:
        if self._interrupt.is_set():
            raise Cancelled()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) when an interruption is requested."""
        return self._interrupt.wait(seconds)

    def on_interruption(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when a cancel is requested (now, if it was already).

        It runs on the thread that cancels (the GUI thread): it must only set a flag, as
        ``Trainer.stop`` does.
        """
        with self._lock:
            if not self._interrupt.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def request_interruption(self) -> None:
        with self._lock:
            self._interrupt.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


class _TaskThread(QThread):
    """Runs the function; its signals are emitted on the worker thread, received queued."""

    progressed = Signal(int, int)
    partial = Signal(object)
    began = Signal()

    def __init__(self, fn: Callable[..., Any], state: TaskState, args: tuple, kwargs: dict) -> None:
        super().__init__()
        self._call = (fn, state, args, kwargs)
        #: (TaskStatus, value or error line), set once, before the thread ends.
        self.outcome: tuple[TaskStatus, Any] | None = None

    def run(self) -> None:
        fn, state, args, kwargs = self._call
        self._call = None
        try:
            self.began.emit()
            self.outcome = (TaskStatus.FINISHED, fn(state, *args, **kwargs))
        except Cancelled:
            self.outcome = (TaskStatus.CANCELLED, None)
        except BaseException as exc:  # noqa: BLE001 - the one error path: never a crash
            self.outcome = (TaskStatus.FAILED, failure_line(exc))


class Task(QObject):
    """Runs ``fn(state, *args, **kwargs)`` in a new thread named ``name``; see the module doc.

    Signals (GUI thread): ``started()``, ``progress(int, int)``, ``partial(object)``,
    ``result(object)``, ``error(str)``, ``cancelled()``, ``finished(object)`` (the
    :class:`TaskStatus`; always last).
    """

    started = Signal()
    progress = Signal(int, int)
    partial = Signal(object)
    result = Signal(object)
    error = Signal(str)
    cancelled = Signal()
    finished = Signal(object)

    def __init__(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.name = name
        self.status = TaskStatus.PENDING
        self.value: Any = None
        self.error_line = ""
        self.state = TaskState()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._thread: _TaskThread | None = None

    def __repr__(self) -> str:
        return f"<Task {self.name} {self.status.value}>"

    # ------------------------------------------------------------------ control (GUI thread)
    def start(self) -> Task:
        global STARTED
        if self.status is not TaskStatus.PENDING:
            raise RuntimeError(f"task {self.name} was started already")
        collector.install()  # rule 5
        thread = _TaskThread(self._fn, self.state, self._args, self._kwargs)
        self._fn = self._args = self._kwargs = None
        thread.setObjectName(self.name)
        # All queued to this object (it lives on the GUI thread); finished comes after the rest.
        thread.began.connect(self.started)
        thread.progressed.connect(self.progress)
        thread.partial.connect(self.partial)
        thread.finished.connect(self._thread_finished)
        self.state._thread = thread
        self._thread = thread
        self.status = TaskStatus.RUNNING
        _LIVE.add(self)
        STARTED += 1
        thread.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop (it checks between steps); harmless once it has ended."""
        if not self.status.done:
            self.state.request_interruption()

    @property
    def running(self) -> bool:
        return self.status is TaskStatus.RUNNING

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread ends, then deliver what it left (shutting down). False on
        a timeout: the task then stays referenced and ends on its own."""
        thread = self._thread
        if thread is None:
            return True
        if not thread.wait(int(timeout_ms)):
            return False
        QCoreApplication.sendPostedEvents(self, 0)  # its progress/partial, then finished
        self._complete()
        return True

    # ------------------------------------------------------------------ delivery
    @Slot()
    def _thread_finished(self) -> None:
        self._complete()

    def _complete(self) -> None:
        thread = self._thread
        if thread is None or self.status.done:
            return
        thread.wait()  # rule 3: the thread has left QThreadPrivate::finish
        status, payload = thread.outcome or (TaskStatus.FAILED, f"{self.name}: the task ended without a result")
        self.status = status
        if status is TaskStatus.FINISHED:
            self.value = payload
            self.result.emit(payload)
        elif status is TaskStatus.FAILED:
            self.error_line = str(payload)
            self.error.emit(self.error_line)
        else:
            self.cancelled.emit()
        self.finished.emit(status)
        QTimer.singleShot(0, self._release)  # rule 4

    def _release(self) -> None:
        self.state._thread = None
        self._thread = None  # the QThread's last reference: deleted here, on the GUI thread
        _LIVE.discard(self)


def run_task(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Task:
    """Make a :class:`Task` and start it; connect to its signals right after (before the event
    loop runs again, nothing is delivered)."""
    return Task(name, fn, *args, **kwargs).start()


def live_tasks() -> list[Task]:
    """The tasks started and not yet released."""
    return list(_LIVE)


def wait_all(timeout_ms: int = 30_000) -> bool:
    """Wait for every live task (call after cancelling them, when the app closes)."""
    ok = True
    for task in list(_LIVE):
        ok = task.wait(timeout_ms) and ok
    return ok


@atexit.register
def _at_exit() -> None:
    """The interpreter is ending: stop what still runs (destroying a running QThread aborts)."""
    for task in list(_LIVE):
        task.cancel()
    for task in list(_LIVE):
        if task._thread is not None:
            task._thread.wait(10_000)


__all__ = [
    "Cancelled",
    "Task",
    "TaskState",
    "TaskStatus",
    "failure_line",
    "live_tasks",
    "run_task",
    "wait_all",
]
