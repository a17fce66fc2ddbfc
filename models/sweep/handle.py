"""The driver's side of out-of-process runs: a handle per run, and the pool that schedules them.

A :class:`RunHandle` is what ``backend.submit(config, run_path)`` returns: the run's live events
(``poll()`` without blocking, ``events()`` blocking until the end, or an ``on_event`` callback),
its controls (``pause()``, ``resume()``, ``stop()``, taking effect within one training step once
the run has started, and remembered until then) and its ``status``. A :class:`Backend` runs at
most ``workers`` runs at once and starts the next submitted one when a slot frees up; a
dispatcher thread of its own receives the events, so a GUI polls handles from a timer, or takes
callbacks (called on the dispatcher thread: hand them to the GUI thread, e.g. by a Qt signal).

A run whose process or worker dies without reporting its end gets a ``FinishedEvent`` with status
``interrupted`` (made here, in the driver), naming why.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator

from models.config import RunConfig
from models.sweep.manifest import RunStatus
from models.sweep.worker import Command
from models.training.events import EpochEvent, Event, FinishedEvent, StepEvent

log = logging.getLogger(__name__)


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread for the block: processes started inside inherit the mask, so
    a Ctrl-C at the terminal reaches the driver only (which then stops each run within a step).
    A Ctrl-C that came meanwhile is delivered when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def threads_per_run(workers: int, reserve_cores: int = 0, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` runs sharing ``cores`` (default: this machine's),
    ``reserve_cores`` left free (one for a GUI): ``workers x threads <= cores - reserve``, at
    least one thread each."""
    cores = cores or os.cpu_count() or 1
    return max(1, (cores - reserve_cores) // max(1, workers))


class RunHandle:
    """One run trained out of this process, as the driver sees it (thread-safe)."""

    def __init__(self, name: str, config: RunConfig, run_path: str,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.name = name
        self.config = config
        self.run_path = run_path
        self._on_event = on_event
        self._lock = threading.Lock()
        self._events: queue.Queue[Event] = queue.Queue()
        self._done = threading.Event()
        self._status = RunStatus.PENDING
        self._send: Callable[[Command], None] | None = None
        self._wanted: list[Command] = []  # commands given before the run started
        self.finished: FinishedEvent | None = None
        self.last_step: StepEvent | None = None
        self.last_epoch: EpochEvent | None = None
        self.pid: int | None = None  # the process that trains it (a child, a Ray worker), once known

    # ------------------------------------------------------------------ for the user of a run
    @property
    def status(self) -> RunStatus:
        return self._status

    @property
    def stop_requested(self) -> bool:
        return Command.STOP in self._wanted

    def pause(self) -> None:
        self._command(Command.PAUSE)

    def resume(self) -> None:
        self._command(Command.RESUME)

    def stop(self) -> None:
        """End the run within one step, its file complete (status stopped); a run not yet
        started never starts."""
        self._command(Command.STOP)

    def poll(self) -> list[Event]:
        """The events received since the last poll, without blocking."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event, as it comes, until the FinishedEvent (included). ``timeout``: seconds to
        wait for each one before raising TimeoutError."""
        while True:
            try:
                ev = self._events.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"{self.name}: no event for {timeout} s") from None
            yield ev
            if isinstance(ev, FinishedEvent):
                return

    def wait(self, timeout: float | None = None) -> FinishedEvent | None:
        """Block until the run ends; its FinishedEvent, or None on timeout."""
        self._done.wait(timeout)
        return self.finished

    def _command(self, command: Command) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._wanted.append(command)
            send = self._send
        if send is not None:
            try:
                send(command)
            except (OSError, EOFError, ValueError):  # the run is ending; its end is reported anyway
                pass

    # ------------------------------------------------------------------ for the backend
    def _started(self, send: Callable[[Command], None]) -> None:
        """The run started; ``send`` delivers commands to it. Those given before go first."""
        with self._lock:
            self._send = send
            self._status = RunStatus.RUNNING
            wanted = list(self._wanted)
        for command in wanted:
            send(command)

    def _deliver(self, ev: Event) -> None:
        if self._done.is_set():
            return
        if isinstance(ev, StepEvent):
            self.last_step = ev
        elif isinstance(ev, EpochEvent):
            self.last_epoch = ev
        elif isinstance(ev, FinishedEvent):
            ev.run_path = self.run_path
            self.finished = ev
            self._status = RunStatus(ev.status)
        self._events.put(ev)
        if self._on_event is not None:
            try:
                self._on_event(ev)
            except Exception:  # a listener's bug must not stop the other runs' events
                log.exception("%s: an event callback raised", self.name)
        if isinstance(ev, FinishedEvent):
            self._done.set()

    def _end_without_report(self, status: RunStatus, message: str) -> None:
        """The run ended without a FinishedEvent of its own (it died, or never started)."""
        epochs = self.last_epoch.epoch if self.last_epoch is not None else 0
        step = max((e.step for e in (self.last_step, self.last_epoch) if e is not None), default=0)
        self._deliver(FinishedEvent(status.value, message, epochs, step, self.run_path))


class Backend:
    """Runs submitted runs, at most ``workers`` at once, in submission order.

    Subclasses start a run (``_start``) and wait for its events (``_pump``); this class keeps the
    queue, the dispatcher thread and the shutdown. Use as a context manager, or call ``close()``.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = int(workers)
        self._lock = threading.Lock()
        self._pending: collections.deque[RunHandle] = collections.deque()
        self._active: list[RunHandle] = []
        self._all: list[RunHandle] = []
        self._closing = False
        self._thread: threading.Thread | None = None
        self._kick = threading.Event()  # set by _wake: a run was submitted or the backend closes

    def submit(self, config: RunConfig, run_path: str | os.PathLike, *, name: str | None = None,
               on_event: Callable[[Event], None] | None = None) -> RunHandle:
        """Queue a run that trains ``config`` into ``run_path`` (replacing a file there)."""
        path = os.path.abspath(os.fspath(run_path))
        handle = RunHandle(name or os.path.basename(path), config, path, on_event)
        with self._lock:
            if self._closing:
                raise RuntimeError("this backend is closed")
            self._pending.append(handle)
            self._all.append(handle)
            if self._thread is None:
                self._thread = threading.Thread(target=self._dispatch, name=type(self).__name__, daemon=True)
                self._thread.start()
        self._wake()
        return handle

    @property
    def handles(self) -> list[RunHandle]:
        with self._lock:
            return list(self._all)

    def stop_all(self) -> None:
        for handle in self.handles:
            handle.stop()

    def close(self, timeout: float | None = None) -> None:
        """Stop every run (each within one step) and wait for them and the dispatcher."""
        self.stop_all()
        with self._lock:
            self._closing = True
            thread = self._thread
        self._wake()
        if thread is not None:
            thread.join(timeout)
        if thread is None or not thread.is_alive():
            self._shutdown()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the dispatcher thread
    def _dispatch(self) -> None:
        # Processes started from this thread inherit its signal mask: with SIGINT blocked, a
        # Ctrl-C at the terminal reaches the driver only, which stops each run within one step.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        while True:
            self._fill()
            with self._lock:
                if self._closing and not self._active and not self._pending:
                    return
                active = list(self._active)
            if not active:
                self._kick.wait(0.5)
                self._kick.clear()
                continue
            try:
                self._pump(active, timeout=0.5)
            except Exception:  # keep the other runs going; the failing ones end as interrupted
                log.exception("%s: the dispatcher failed", type(self).__name__)
            with self._lock:
                self._active = [h for h in self._active if not self._over(h)]

    def _fill(self) -> None:
        while True:
            with self._lock:
                if len(self._active) >= self.workers or not self._pending:
                    return
                handle = self._pending.popleft()
            if handle.stop_requested:
                handle._end_without_report(RunStatus.STOPPED, "stopped before it started")
                continue
            try:
                self._start(handle)
            except Exception as exc:  # noqa: BLE001  (one line on the run; the sweep goes on)
                log.exception("%s: could not start", handle.name)
                handle._end_without_report(RunStatus.ERROR, f"could not start: {type(exc).__name__}: {exc}")
                continue
            with self._lock:
                self._active.append(handle)

    def _start(self, handle: RunHandle) -> None:
        raise NotImplementedError

    def _pump(self, active: list[RunHandle], timeout: float) -> None:
        """Wait up to ``timeout`` for events of the active runs, deliver them, and end the runs
        that are over (``_deliver`` of their FinishedEvent, or ``_end_without_report``)."""
        raise NotImplementedError

    def _over(self, handle: RunHandle) -> bool:
        """Whether a started run no longer holds its slot."""
        return handle.finished is not None

    def _wake(self) -> None:
        """Wake the dispatcher; subclasses also interrupt a waiting ``_pump`` (optional: it
        returns within its timeout anyway)."""
        self._kick.set()

    def _shutdown(self) -> None:
        """Release what the backend holds, after every run has ended."""
