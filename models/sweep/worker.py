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
