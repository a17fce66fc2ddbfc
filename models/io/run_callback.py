"""The run file as a callback of the trainer: it receives the run's events and writes them.

``RunFileCallback(path)`` checks the target at once, creates the file on the ``StartEvent``, buffers
step rows, saves each ``CheckpointEvent``'s weights (through the staging copy), appends each epoch,
flushes when the run pauses, and sets the status and closes on the ``FinishedEvent``. The trainer
never sees the file. ``start_run`` builds a trainer that writes its run file: what the CLI's
``train`` and the app's training worker call.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from typing import Any

from models.config import RunConfig
from models.data import Dataset, load_dataset, parse_hdf5_spec
from models.errors import RunFileError
from models.io.run_layout import FLUSH_SECONDS
from models.io.run_writer import RunWriter, check_run_target
from models.training.events import (
    Callback, CheckpointEvent, EpochEvent, FinishedEvent, PauseEvent, StartEvent, StepEvent,
)
from models.training.trainer import Trainer

log = logging.getLogger(__name__)


class RunFileCallback:
    """Writes one run file from a trainer's events (see the module docstring).

    Parameters
    ----------
    path, force
        The run file; an existing one is replaced only with ``force``. Checked when the callback
        is made (``check_run_target``), created when the run starts.
    flush_seconds
        Step rows reach the file at most this often (and at every epoch and pause).
    """

    def __init__(self, path: str | os.PathLike, *, force: bool = False,
                 flush_seconds: float = FLUSH_SECONDS) -> None:
        self.path = os.fspath(path)
        self.force = force
        self.flush_seconds = flush_seconds
        self.writer: RunWriter | None = None
        check_run_target(self.path, force)

    @functools.singledispatchmethod
    def __call__(self, event: Any) -> None:
        """Events this file does not record are ignored."""

    @__call__.register
    def _start(self, event: StartEvent) -> None:
        self.writer = RunWriter(
            self.path, event.config, event.weights, event.dataset_info, event.val_indices,
            force=self.force, flush_seconds=self.flush_seconds,
        )

    @__call__.register
    def _step(self, event: StepEvent) -> None:
        if self.writer is not None:
            self.writer.log_step(event)

    @__call__.register
    def _checkpoint(self, event: CheckpointEvent) -> None:
        if self.writer is None:
            return
        if not event.final:
            self.writer.save_weights(event.weights, step=event.step)
            return
        try:  # the run is ending anyway: a failed last save is logged, the epoch's copy stays
            self.writer.save_weights(event.weights, step=event.step)
        except (RunFileError, OSError) as exc:
            log.error("%s", exc)

    @__call__.register
    def _epoch(self, event: EpochEvent) -> None:
        if self.writer is not None:
            self.writer.log_epoch(event)

    @__call__.register
    def _pause(self, event: PauseEvent) -> None:
        if self.writer is not None:
            self.writer.flush()

    @__call__.register
    def _finished(self, event: FinishedEvent) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            writer.set_status(event.status, event.message)
        finally:
            writer.close()


def check_not_data_file(path: str, data_spec: str) -> None:
    """RunFileError when ``path`` is the data's own file (also through a link or another
    relative name; labels come from the same file): replacing it would delete the user's data
    before training read them. Cheap: checked before the data are read."""
    data_file = parse_hdf5_spec(data_spec)[0]
    if not os.path.exists(path) or not os.path.exists(data_file):
        return
    try:
        same = os.path.samefile(path, data_file)
    except OSError:
        same = os.path.realpath(path) == os.path.realpath(data_file)
    if same:
        raise RunFileError(f"{path}: is the data file ({data_spec}); write the run to another --out")


def start_run(
    config: RunConfig,
    run_path: str | os.PathLike,
    *,
    force: bool = False,
    device: Any = None,
    callbacks: Iterable[Callback] = (),
    dataset: Dataset | None = None,
) -> Trainer:
    """A trainer for ``config`` that writes its run file at ``run_path`` (first among its
    callbacks, so a listener's event is on disk when it arrives). The data set is opened once
    (or given, already open) and the configuration takes its absolute spec and sample shape.
    The target is checked before the data are read; ``run()`` creates the file."""
    recorder = RunFileCallback(run_path, force=force)
    check_not_data_file(recorder.path, config.train.data)
    if dataset is None:
        dataset = load_dataset(config.train.data, config.train.labels)
    return Trainer.for_dataset(config, dataset, device=device, callbacks=[recorder, *callbacks])
