"""The Ray backend: each run as a Ray actor task, on a local instance or an existing cluster.

Why actor tasks, not Ray Tune trials: a sweep here is a fixed list of runs, with no search
algorithm or scheduler to drive, and what matters is the live stream of the trainer's own events
and pause/resume/stop within one step. A Tune trial reports through ``tune.report`` (epoch-level
dictionaries, not our events) and stops through Tune's scheduler; an actor whose ``train``
method runs the trainer (:func:`~models.sweep.worker.train_one`) while its second thread takes
``control`` calls (``max_concurrency=2``) gives both directly. Events reach the driver through
one ``ray.util.queue.Queue`` per backend, as ``(run key, event)`` pairs, as they happen.

The backend keeps a pool of at most ``workers`` actors and gives each next run to an idle one,
so a sweep pays a worker's start and its imports (torch, h5py, the trainer: 2-3 s) once per
actor, not once per run, as the local backend's fork server does. ``warm_up`` starts the pool
before the first run. An actor whose process died is dropped from the pool and replaced.

Where the run files go: the driver writes a probe file (a random token) into the sweep's folder;
a worker that reads the same token at the same path shares that storage and writes its run file
in place (a local instance always does). Otherwise it trains into a temporary file on its node
and returns the file's bytes when the run ends; the driver writes them into the folder
atomically, then reports the run's end. A worker that dies (its node lost, the process killed)
ends its run ``interrupted``; with unshared storage its partial file stays on the worker's node,
lost to the driver. Either way the next invocation of the sweep trains that run again.

``address``: ``None`` starts a local instance (and shuts it down on ``close``), ``"auto"`` joins
the cluster this machine belongs to, ``"ray://HOST:PORT"`` connects through Ray Client. Workers
get this package's code through ``runtime_env={"py_modules": [models]}``, so a cluster needs Ray,
torch, h5py and numpy installed but not Latent Explorer. Ray is optional (``pip install
"latent-explorer[cluster]"``); without it this module imports, and ``RayBackend`` raises
ConfigError with that hint.
"""

from __future__ import annotations

import itertools
import os
import secrets
import tempfile
import threading
from typing import Any

from models.config import RunConfig
from models.errors import ConfigError
from models.io.atomic import replace_from, write_temp_beside
from models.sweep.handle import Backend, RunHandle, sigint_blocked, threads_per_run
from models.sweep.manifest import RunStatus
from models.sweep.worker import Command, Control, Outbox, set_threads, train_one
from models.training.events import Event, FinishedEvent

PROBE = ".ray-storage-probe"


def import_ray() -> Any:
    """The ``ray`` module, or ConfigError naming the extra that installs it."""
    try:
        import ray
        import ray.util.queue  # noqa: F401
    except ImportError:
        raise ConfigError(
            'the Ray backend needs Ray: pip install "latent-explorer[cluster]"'
        ) from None
    return ray


class _RunActor:
    """Runs on a Ray worker, one after another (made a Ray actor class by :func:`_actor_class`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._controls: dict[int, Control] = {}  # run key -> its controls, made by whichever comes first

    def ready(self) -> int:
        """Import what a run needs, once for this worker's life; its process id."""
        import models.io.run_callback  # noqa: F401  (the trainer, torch, h5py)

        return os.getpid()

    def _control_of(self, key: int) -> Control:
        with self._lock:
            return self._controls.setdefault(key, Control())

    def control(self, key: int, command: str) -> None:
        """Pause, resume or stop run ``key`` (before it starts, too: calls may overtake ``train``)."""
        self._control_of(key).apply(command)

    def train(self, key: int, config: RunConfig, run_path: str, probe: tuple[str, str], events: Any,
              threads: int | None, device: str | None) -> bytes | None:
        """Train; None when the file was written in place, else the run file's bytes."""
        import ray

        set_threads(threads)
        # Batched from a thread: Queue.put is a blocking round trip to the queue's actor.
        outbox = Outbox(events.put_nowait_batch, gone=(ray.exceptions.RayError,))
        outbox.put((key, os.getpid()))  # first: which process trains it (RunHandle.pid)

        def send(ev: Event) -> None:
            outbox.put((key, ev))

        control = self._control_of(key)
        try:
            if _reads_token(*probe):
                train_one(config, run_path, send, control, device)
                return None
            with tempfile.TemporaryDirectory(prefix="latent-explorer-") as tmp:
                path = os.path.join(tmp, os.path.basename(run_path))
                train_one(config, path, send, control, device)
                if not os.path.exists(path):  # the run could not start: its error says why
                    return None
                with open(path, "rb") as fh:
                    return fh.read()
        finally:
            with self._lock:
                self._controls.pop(key, None)
            outbox.close()  # every event is in the queue before the driver sees the run end


def _reads_token(path: str, token: str) -> bool:
    if not token:
        return False
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read() == token
    except OSError:
        return False


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Initialise Ray in this process unless it is already: a new local instance (of
    ``num_cpus`` CPUs, default all) when ``address`` is None, else the cluster at ``address``.
    Workers get this package through ``runtime_env``. True if this call initialised Ray."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    import models

    package = os.path.dirname(os.path.abspath(models.__file__))
    try:
        with sigint_blocked():  # Ray's processes leave Ctrl-C to the driver
            ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                     log_to_driver=False, logging_level="ERROR", runtime_env={"py_modules": [package]})
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = address or "a local instance"
        raise ConfigError(f"cannot start Ray on {where}: {str(exc).splitlines()[0]}") from None
    return True


_ACTOR = None


def _actor_class(ray: Any) -> Any:
    global _ACTOR
    if _ACTOR is None:
        _ACTOR = ray.remote(_RunActor)
    return _ACTOR


class RayBackend(Backend):
    """Trains each submitted run on a Ray worker; see the module's docstring.

    Parameters
    ----------
    workers
        Runs at once.
    address
        None (a new local instance), ``"auto"`` or ``"ray://HOST:PORT"``. Ignored when Ray is
        already initialised in this process (the caller's instance is used, and left running).
    threads
        Torch threads (and Ray CPUs) per run; default: the cluster's CPUs divided among the
        workers, at most one node's.
    device
        ``"cpu"``, ``"cuda"`` or None (CUDA when present on the worker), for every run.
    return_files
        Have the workers return every run file as bytes, as when they do not share the sweep's
        folder (default: a probe file finds out).
    """

    def __init__(self, workers: int, address: str | None = None, threads: int | None = None,
                 device: str | None = None, return_files: bool = False) -> None:
        super().__init__(workers)
        ray = self._ray = import_ray()
        self._owns_ray = connect(address)
        self.return_files = return_files
        node_cpus = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
        biggest = max(node_cpus, default=1)
        self.threads = threads or min(biggest, threads_per_run(workers, cores=sum(node_cpus) or 1))
        if self.threads > biggest:
            if self._owns_ray:
                ray.shutdown()
            raise ConfigError(f"--threads {self.threads}: the largest Ray node has {biggest} CPUs")
        self.device = device
        self._queue = ray.util.queue.Queue(actor_options={"num_cpus": 0})
        self._runs: dict[int, tuple[RunHandle, Any, Any]] = {}  # key -> handle, actor, result ref
        self._ends: dict[int, FinishedEvent] = {}  # held until the run's file is in place
        self._probes: dict[str, str] = {}  # folder -> token
        self._idle: list[Any] = []  # actors between runs (the pool: these and the runs' own)
        self._pool_lock = threading.Lock()  # warm_up may run beside the dispatcher
        self._keys = itertools.count()

    def warm_up(self) -> list[int]:
        """Start the pool's actors now and return once each has made its imports, so that the
        first runs start at once too (blocks for them, ~2-3 s: call it off a GUI thread). The
        process ids of the idle actors."""
        with self._pool_lock:
            while len(self._idle) + len(self._runs) < self.workers:
                self._idle.append(self._new_actor())
            idle = list(self._idle)
        return self._ray.get([actor.ready.remote() for actor in idle])

    def _new_actor(self) -> Any:
        return _actor_class(self._ray).options(num_cpus=self.threads, max_concurrency=2).remote()

    def _probe(self, run_path: str) -> tuple[str, str]:
        """The probe file in the run's folder and its token ("" when storage is not shared)."""
        folder = os.path.dirname(run_path)
        if self.return_files:
            return os.path.join(folder, PROBE), ""
        if folder not in self._probes:
            token = secrets.token_hex(16)
            path = os.path.join(folder, PROBE)
            replace_from(write_temp_beside(path, token.encode("ascii")), path)
            self._probes[folder] = token
        return os.path.join(folder, PROBE), self._probes[folder]

    def _start(self, handle: RunHandle) -> None:
        key = next(self._keys)
        with self._pool_lock:
            actor = self._idle.pop() if self._idle else self._new_actor()
        ref = actor.train.remote(key, handle.config, handle.run_path, self._probe(handle.run_path),
                                 self._queue, self.threads, self.device)
        self._runs[key] = (handle, actor, ref)
        handle._started(lambda command, a=actor, k=key: a.control.remote(k, Command(command).value))

    def _over(self, handle: RunHandle) -> bool:
        return all(run[0] is not handle for run in self._runs.values())

    def _drain(self, timeout: float) -> None:
        from ray.util.queue import Empty

        try:
            items = [self._queue.get(timeout=timeout)] if timeout > 0 else []
            left = self._queue.qsize()
            if left:
                items += self._queue.get_nowait_batch(left)
        except Empty:
            return
        for key, ev in items:
            run = self._runs.get(key)
            if run is None:
                continue
            if isinstance(ev, int):
                run[0].pid = ev
            elif isinstance(ev, FinishedEvent):
                self._ends[key] = ev
            else:
                run[0]._deliver(ev)

    def _pump(self, active: list[RunHandle], timeout: float) -> None:
        ray = self._ray
        self._drain(timeout)
        refs = {run[2]: key for key, run in self._runs.items()}
        if not refs:
            return
        done, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        if done:
            self._drain(0)  # the events a finished run put before returning
        for ref in done:
            self._end(refs[ref], ref)

    def _end(self, key: int, ref: Any) -> None:
        handle, actor, _ = self._runs[key]
        ray = self._ray
        try:
            data = ray.get(ref)
            died = None
        except ray.exceptions.RayError as exc:
            data, died = None, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        del self._runs[key]
        if died is None:
            with self._pool_lock:
                self._idle.append(actor)  # the next run's: its imports are made
        else:
            ray.kill(actor)
        end = self._ends.pop(key, None)
        if died is not None or end is None:
            handle._end_without_report(RunStatus.INTERRUPTED, f"its Ray worker died ({died or 'no end reported'})")
            return
        if data is not None:
            try:
                replace_from(write_temp_beside(handle.run_path, data), handle.run_path)
            except OSError as exc:
                handle._end_without_report(
                    RunStatus.ERROR, f"could not write the run file its worker returned: {exc.strerror or exc}"
                )
                return
        handle._deliver(end)

    def _shutdown(self) -> None:
        for folder in self._probes:
            try:
                os.unlink(os.path.join(folder, PROBE))
            except OSError:
                pass
        with self._pool_lock:
            actors = [run[1] for run in self._runs.values()] + self._idle
            self._idle = []
        for actor in actors:
            self._ray.kill(actor)
        self._queue.shutdown()
        if self._owns_ray:
            self._ray.shutdown()
