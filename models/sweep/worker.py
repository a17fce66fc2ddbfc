"""The worker's side of an out-of-process run: train one configuration, report, obey the controls.

Both backends run :func:`train_one` where the run trains (a child process of ours, a Ray worker).
It is the one place that builds the trainer, so the day the run file becomes a training callback
only this function changes. :class:`Control` carries pause/resume/stop from whatever transport
delivers them (a pipe, a Ray actor call) to the trainer, including commands that arrive while the
data are still loading.
"""

from __future__ import annotations

import dataclasses

import enum
import os
import queue
import threading
import traceback
from collections.abc import Callable

from models.config import RunConfig
from models.errors import LatentExplorerError
from models.training.events import EpochEvent, Event, FinishedEvent, StartEvent, StepEvent


class Command(enum.StrEnum):
    """What the driver can tell a running run."""

    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


class Control:
    """Pause/resume/stop for a trainer that may not exist yet; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trainer = None
        self.paused = False
        self.stopped = False

    def apply(self, command: Command | str) -> None:
        command = Command(command)
        with self._lock:
            if self.stopped:  # final: a pause after a stop would hold the trainer forever
                return
            if command is Command.STOP:
                self.stopped = True
            else:
                self.paused = command is Command.PAUSE
            trainer = self._trainer
        if trainer is not None:
            _forward(trainer, command)

    def attach(self, trainer) -> None:  # noqa: ANN001  (a Trainer; typed loosely to load no torch)
        """Hand the commands received so far, and every later one, to ``trainer``."""
        with self._lock:
            self._trainer = trainer
            if self.stopped:
                _forward(trainer, Command.STOP)
            elif self.paused:
                _forward(trainer, Command.PAUSE)


def _forward(trainer, command: Command) -> None:  # noqa: ANN001
    {Command.PAUSE: trainer.pause, Command.RESUME: trainer.resume, Command.STOP: trainer.stop}[command]()


class Outbox:
    """Sends events from a thread of its own, in order, so that the training loop never waits
    on the transport: each time the thread wakes it sends everything queued so far as one batch
    (``send_batch(list)``: a pipe sends them one by one, Ray in one call; on a busy machine a
    blocking round trip per step had cost the Ray backend a good part of its time).
    ``close`` sends the rest and waits. Once ``send_batch`` raises one of ``gone`` (the
    driver has gone away) the rest is dropped: the control channel stops the run."""

    def __init__(self, send_batch: Callable[[list], object], gone: tuple[type[BaseException], ...]) -> None:
        self._send_batch = send_batch
        self._gone = gone
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._send_all, name="events", daemon=True)
        self._thread.start()

    def put(self, ev: object) -> None:
        self._queue.put(ev)

    def _send_all(self) -> None:
        done = False
        while not done:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if batch[-1] is _CLOSE:
                batch.pop()
                done = True
            if not batch:
                continue
            try:
                self._send_batch(batch)
            except self._gone:
                return

    def close(self) -> None:
        self._queue.put(_CLOSE)
        self._thread.join()


_CLOSE = object()  # the last item an Outbox is given


def set_threads(threads: int | None) -> None:
    """Give this process's torch ``threads`` intra-op threads (None: leave torch's default)."""
    if threads is None:
        return
    import torch

    torch.set_num_threads(max(1, int(threads)))


def train_one(
    config: RunConfig,
    run_path: str,
    on_event: Callable[[Event], None],
    control: Control,
    device: str | None = None,
) -> FinishedEvent:
    """Train ``config`` into ``run_path`` (replacing a file there), sending its start, step,
    epoch and finished events to ``on_event`` (weights stay out: the start event crosses to the
    driver without its weights and validation indices, checkpoint events not at all; the run
    file keeps them). Always ends with exactly one
    FinishedEvent sent: the trainer's, or status "error" with one line when the run could not
    start (bad data, an unusable device)."""
    sent: list[FinishedEvent] = []

    def emit(ev: Event) -> None:
        if isinstance(ev, FinishedEvent):
            sent.append(ev)
        if isinstance(ev, StartEvent):  # what the run is, without its weights
            on_event(dataclasses.replace(ev, weights={}, val_indices=None))
        elif isinstance(ev, StepEvent | EpochEvent | FinishedEvent):
            on_event(ev)

    try:
        from models.io.run_callback import start_run

        trainer = start_run(config, run_path, force=True, device=device, callbacks=[emit])
        control.attach(trainer)
        return trainer.run()
    except Exception as exc:  # reported, not raised: the driver shows it as the run's message
        if not isinstance(exc, LatentExplorerError):  # a bug: keep its traceback in the log
            traceback.print_exc()
        if sent:
            return sent[0]
        message = str(exc) if isinstance(exc, LatentExplorerError) else f"{type(exc).__name__}: {exc}"
        fin = FinishedEvent("error", message.splitlines()[0] if message else "error", 0, 0, os.fspath(run_path))
        on_event(fin)
        return fin
