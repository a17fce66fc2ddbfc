"""The local backend: runs in child processes of this one, at most ``workers`` at once.

Each run is a :class:`~models.sweep.process.ChildRun` (forked from a fork server that has
imported the trainer; ``spawn`` off Linux) with
``threads`` torch threads; by default the machine's cores are split between the workers, with
``reserve_cores`` left free (the app passes 1, for its GUI thread): ``workers x threads <= cores
- reserve_cores``. One dispatcher thread waits on every child's events pipe at once
(``multiprocessing.connection.wait``), so events reach the handles as they are sent.

Example (the app's use, from any thread)::

    backend = LocalBackend(workers=2, reserve_cores=1)
    handle = backend.submit(config, "runs/a.h5", on_event=print)   # or handle.poll() on a timer
    handle.pause(); handle.resume(); handle.stop()
    handle.wait(); handle.status          # RunStatus.STOPPED
    backend.close()
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import wait

from models.sweep.handle import Backend, RunHandle, threads_per_run
from models.sweep.manifest import RunStatus
from models.sweep.process import ChildRun


class LocalBackend(Backend):
    """Trains each submitted run in a child process; see the module's docstring.

    Parameters
    ----------
    workers
        Runs at once (default: the cores left after ``reserve_cores``).
    threads
        Torch threads per run (default: :func:`~models.sweep.handle.threads_per_run`).
    reserve_cores
        Cores left to the rest of this process (1 for a GUI).
    device
        ``"cpu"``, ``"cuda"`` or None (CUDA when present), for every run.
    """

    def __init__(self, workers: int | None = None, threads: int | None = None,
                 reserve_cores: int = 0, device: str | None = None) -> None:
        cores = os.cpu_count() or 1
        workers = workers or max(1, cores - reserve_cores)
        super().__init__(workers)
        self.threads = threads or threads_per_run(workers, reserve_cores, cores)
        self.device = device
        self._children: dict[RunHandle, ChildRun] = {}
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)

    def _start(self, handle: RunHandle) -> None:
        child = ChildRun(handle.config, handle.run_path, self.threads, self.device, handle.name)
        self._children[handle] = child
        handle.pid = child.pid
        handle._started(child.send)

    def _over(self, handle: RunHandle) -> bool:
        return handle not in self._children  # its process has exited and been reaped

    def _pump(self, active: list[RunHandle], timeout: float) -> None:
        by_conn = {self._children[h].events: h for h in active if h in self._children}
        for conn in wait([*by_conn, self._wake_r], timeout):
            if conn is self._wake_r:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
                continue
            handle = by_conn[conn]
            child = self._children[handle]
            while True:  # everything the child has sent so far
                ev = child.receive()
                if ev is None:
                    self._reap(handle)
                    break
                handle._deliver(ev)
                if not conn.poll():
                    break

    def _reap(self, handle: RunHandle) -> None:
        how = self._children[handle].reap()
        if handle.finished is None:
            handle._end_without_report(
                RunStatus.INTERRUPTED,
                f"its training process died ({how}); the run file keeps every epoch flushed before",
            )
        del self._children[handle]

    def _wake(self) -> None:
        super()._wake()
        try:
            self._wake_w.send_bytes(b"!")
        except OSError:  # closed: the backend is shut down
            pass

    def _shutdown(self) -> None:
        for child in list(self._children.values()):  # only if close() timed out
            child.reap()
        self._wake_w.close()
        self._wake_r.close()
