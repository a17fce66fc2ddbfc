"""One run in a child process, two pipes to the parent.

On Linux the child is forked from multiprocessing's fork server, a clean process of its own
(started once, with ``exec``, never a fork of this one, which may be a GUI with threads) that
has imported torch, h5py and the trainer (:data:`PRELOAD`): a run's process then starts in
milliseconds instead of importing them for ~2-3 s, which every run of a sweep paid. Elsewhere
(macOS, Windows) it is started with ``spawn``. Either way nothing of this process's state but
the run's arguments reaches the child.

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
import signal
import sys
import threading
from multiprocessing.connection import Connection

from models.config import RunConfig
from models.sweep.worker import Command, Control, Outbox, set_threads, train_one
from models.training.events import Event

#: Seconds a child has to exit after closing its events pipe before it is killed.
EXIT_GRACE_S = 30.0

#: What the fork server imports once for every child it forks (the trainer imports torch and
#: h5py). multiprocessing ignores a preload that fails to import; the child then imports it.
PRELOAD = ("models.sweep.process", "models.io.run_callback")

_CONTEXT: multiprocessing.context.BaseContext | None = None


def start_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context the children start from (see the module's docstring)."""
    global _CONTEXT
    if _CONTEXT is None:
        if sys.platform.startswith("linux"):
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(PRELOAD))
        else:
            ctx = multiprocessing.get_context("spawn")
        _CONTEXT = ctx
    return _CONTEXT


def warm_up() -> None:
    """Start the fork server now and return once it has imported :data:`PRELOAD` (it forks a
    child that does nothing), so that the first run starts at once too. Blocks for the imports
    (~2-3 s the first time; nothing after): call it off the GUI thread. No-op with ``spawn``."""
    ctx = start_context()
    if ctx.get_start_method() != "forkserver":
        return
    child = ctx.Process(target=_nothing, name="latent-explorer warm-up")
    child.start()
    child.join()


def _nothing() -> None:
    pass


# =========================================================================== in the child
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

    def send_each(batch: list) -> None:
        for ev in batch:
            events.send(ev)

    outbox = Outbox(send_each, gone=(OSError, ValueError))  # gone: the parent has exited
    control = Control()
    threading.Thread(target=_listen, args=(commands, control), name="control", daemon=True).start()
    try:
        train_one(config, run_path, outbox.put, control, device)
    finally:
        outbox.close()
        events.close()


# =========================================================================== in the parent
class ChildRun:
    """The parent's side of one child: its process, its events pipe, its control pipe."""

    def __init__(self, config: RunConfig, run_path: str, threads: int | None, device: str | None,
                 name: str = "run") -> None:
        ctx = start_context()
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

