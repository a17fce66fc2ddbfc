"""One run in a child process: started with multiprocessing's ``spawn``, two pipes to the parent.

The child (:func:`_child_main`) sets its torch threads, then trains with
:func:`~models.sweep.worker.train_one`. Its events (the trainer's own ``StepEvent``,
``EpochEvent`` and ``FinishedEvent`` dataclasses) go to the parent on the *events* pipe as they
happen, sent by a thread of the child so the training loop never waits on the parent. A thread
listens on the *control* pipe and hands pause/resume/stop to the trainer, which obeys before its
next step. Pickles cross these pipes only between this parent and its own child, never from a
file.

Ends: the child sends its FinishedEvent and exits. If it dies first (kill -9, out of memory),
the parent sees the events pipe close with no FinishedEvent and reports the run ``interrupted``;
its run file (HDF5 in SWMR mode) stays readable with every epoch flushed before. If the parent
dies, the child's control pipe closes, and the child stops its run within one step and exits.
The child ignores SIGINT: a Ctrl-C is the driver's to handle (it stops every run).
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
from multiprocessing.connection import Connection

from models.config import RunConfig
from models.sweep.worker import Command, Control, set_threads, train_one
from models.training.events import Event

#: Seconds a child has to exit after closing its events pipe before it is killed.
EXIT_GRACE_S = 30.0


# =========================================================================== in the child
class _Outbox:
    """Sends events on a pipe from a thread of its own, in order; ``close`` sends the rest."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._queue: queue.Queue[Event | None] = queue.Queue()
        self._thread = threading.Thread(target=self._send_all, name="events", daemon=True)
        self._thread.start()

    def put(self, ev: Event) -> None:
        self._queue.put(ev)

    def _send_all(self) -> None:
        while (ev := self._queue.get()) is not None:
            try:
                self._conn.send(ev)
            except (OSError, ValueError):  # the parent is gone; the control pipe stops the run
                return

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._conn.close()


def _listen(conn: Connection, control: Control) -> None:
    while True:
        try:
            command = conn.recv()
        except (EOFError, OSError):  # the parent is gone: stop, keeping the file complete
            control.apply(Command.STOP)
            return
        control.apply(command)


def _child_main(config: RunConfig, run_path: str, threads: int | None, device: str | None,
                events: Connection, commands: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    set_threads(threads)
    outbox = _Outbox(events)
    control = Control()
    threading.Thread(target=_listen, args=(commands, control), name="control", daemon=True).start()
    try:
        train_one(config, run_path, outbox.put, control, device)
    finally:
        outbox.close()


# =========================================================================== in the parent
class ChildRun:
    """The parent's side of one child: its process, its events pipe, its control pipe."""

    def __init__(self, config: RunConfig, run_path: str, threads: int | None, device: str | None,
                 name: str = "run") -> None:
        ctx = multiprocessing.get_context("spawn")
        events_r, events_w = ctx.Pipe(duplex=False)
        control_r, control_w = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_child_main,
            args=(config, run_path, threads, device, events_w, control_r),
            name=f"latent-explorer {name}",
        )
        self.process.start()
        events_w.close()  # only the child writes: its death closes the pipe
        control_r.close()
        self.events = events_r
        self._control = control_w
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, command: Command) -> None:
        with self._lock:
            self._control.send(Command(command).value)

    def receive(self) -> Event | None:
        """The next event (blocking), or None once the child has closed its end."""
        try:
            return self.events.recv()
        except (EOFError, OSError):
            return None

    def reap(self) -> str:
        """Wait for the child to exit (killing it after EXIT_GRACE_S); how it exited, in words."""
        self.process.join(EXIT_GRACE_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        code = self.process.exitcode
        self.events.close()
        self._control.close()
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

