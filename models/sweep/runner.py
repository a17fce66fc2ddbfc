"""A sweep in its folder: plan it, resume it, train its runs on a backend, stop it.

:class:`Sweep` ties a :class:`~models.sweep.spec.SweepSpec` to a folder. ``run(backend)`` takes
the folder's lock, loads or creates ``sweep.json``, keeps the runs already done (finished or
diverged, with a readable run file) and submits every other one (pending, stopped, interrupted,
failed) to the backend, which trains it from the start into its file. The manifest is rewritten
atomically when a run starts and when it ends, with the run file's last validation point as its
summary. ``stop()`` (from a signal handler or another thread) stops every run within one step;
``run`` then returns once each has written its file.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

from models.errors import RunFileError
from models.sweep.handle import Backend, RunHandle
from models.sweep.manifest import Manifest, RunRecord, RunStatus, RunSummary, lock_folder, prepare_folder, summarize
from models.sweep.spec import SweepSpec
from models.training.events import Event, FinishedEvent

Listener = Callable[[RunRecord, Event], None]


class Sweep:
    """A sweep and its folder (created if missing; RunFileError if it is a file)."""

    def __init__(self, spec: SweepSpec, folder: str | os.PathLike) -> None:
        self.spec = spec
        self.folder = prepare_folder(os.fspath(folder))
        self.handles: dict[str, RunHandle] = {}
        self.manifest: Manifest | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Stop every run of the sweep within one step (safe from a signal handler)."""
        self._stopping.set()
        with self._lock:
            handles = list(self.handles.values())
        for handle in handles:
            handle.stop()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self, backend: Backend, on_event: Listener | None = None) -> list[RunRecord]:
        """Train what is left of the sweep on ``backend``; block until every run has ended.
        ``on_event(record, event)`` sees every event, on this thread. Returns the records."""
        with lock_folder(self.folder):
            manifest = self.manifest = Manifest.for_spec(self.folder, self.spec)
            todo = [r for r in manifest.runs if not self._is_done(manifest, r)]
            for record in todo:
                record.status, record.message, record.summary = RunStatus.PENDING, "", RunSummary()
            manifest.save()
            inbox: queue.Queue[tuple[str, Event]] = queue.Queue()
            planned = {p.name: p for p in self.spec.runs}
            for record in todo:
                self._submit(backend, manifest, planned[record.name].config, record, inbox)
            left = {r.name for r in todo}
            try:
                while left:
                    try:
                        name, ev = inbox.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    record = manifest.record(name)
                    if isinstance(ev, FinishedEvent):
                        self._finish(manifest, record, ev)
                        left.discard(name)
                    elif record.status is RunStatus.PENDING:
                        record.status = RunStatus.RUNNING
                        manifest.save()
                    if on_event is not None:
                        on_event(record, ev)
            finally:
                if left:  # interrupted here (a second Ctrl-C): the runs stop on their own
                    self.stop()
                    manifest.save()
            return manifest.runs

    def _submit(self, backend: Backend, manifest: Manifest, config, record: RunRecord,  # noqa: ANN001
                inbox: queue.Queue) -> None:
        def forward(ev: Event, name: str = record.name) -> None:
            inbox.put((name, ev))

        handle = backend.submit(config, manifest.run_path(record), name=record.name, on_event=forward)
        with self._lock:
            self.handles[record.name] = handle
        if self._stopping.is_set():
            handle.stop()

    @staticmethod
    def _is_done(manifest: Manifest, record: RunRecord) -> bool:
        """Done, and its run file still says so: a missing or damaged file trains again."""
        if not record.status.done:
            return False
        try:
            record.summary = summarize(manifest.run_path(record))
        except RunFileError:
            return False
        return True

    @staticmethod
    def _finish(manifest: Manifest, record: RunRecord, ev: FinishedEvent) -> None:
        record.status = RunStatus(ev.status)
        record.message = ev.message
        path = manifest.run_path(record)
        if os.path.exists(path):
            try:
                record.summary = summarize(path)
            except RunFileError as exc:
                record.message = f"{ev.message}; {exc}"
        manifest.save()
