"""The run file as a training callback, the run status enum, and start_run's order of checks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from models.errors import ConfigError, DataError, RunFileError
from models.io.run_callback import RunFileCallback, check_not_data_file, start_run
from models.io.runfile import RunReader
from models.training import (
    CheckpointEvent, EpochEvent, FinishedEvent, PauseEvent, RunStatus, StartEvent, StepEvent, Trainer,
)

from train_helpers import one_thread  # noqa: F401  (fixture)
from train_helpers import tiny_config, write_tiny_h5

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> str:
    return write_tiny_h5(str(tmp_path_factory.mktemp("data") / "tiny.h5"))


def _start(trainer: Trainer) -> StartEvent:
    w = {k: t.detach().numpy().copy() for k, t in trainer.model.state_dict().items()}
    return StartEvent(trainer.config, {"name": "tiny", "n": 96}, np.arange(72, 96), w, 10)


def test_the_callback_writes_what_the_events_say(spec, tmp_path):
    trainer = Trainer.from_config(tiny_config(spec), device="cpu")
    path = tmp_path / "run.h5"
    rec = RunFileCallback(path, flush_seconds=3600.0)
    assert not path.exists()  # created by the StartEvent, not before
    start = _start(trainer)
    rec("an event it does not know")  # ignored
    rec(start)
    kl = np.array([1.0, 2.0, 3.0])
    rec(StepEvent(step=2, epoch=1, elbo=-9.0, distortion=3.0, rate=6.0, kl_per_dim=kl, beta=1.0,
                  lr=1e-3, samples_per_s=10.0))
    with RunReader(path) as r:
        assert r.status == RunStatus.RUNNING and isinstance(r.status, RunStatus) and r.n_steps == 0
        rec(PauseEvent(step=2, epoch=1))  # a pause flushes the buffered step row
        r.refresh()
        assert r.n_steps == 1 and r.weights_step == -1
    twice = {k: v * 2 for k, v in start.weights.items()}
    rec(CheckpointEvent(step=2, epoch=1, weights=twice))
    rec(EpochEvent(epoch=1, step=2, train_elbo=-9.0, train_distortion=3.0, train_rate=6.0,
                   val_elbo=-10.0, val_distortion=4.0, val_rate=6.0, val_kl_per_dim=kl,
                   activity_per_dim=kl, active_units=3, mutual_info=1.0, marginal_kl=5.0,
                   seconds=0.5, verdict="fine"))
    rec(FinishedEvent(RunStatus.STOPPED, "stopped by a test", epochs_done=1, step=2))
    assert rec.writer is None
    with RunReader(path) as r:
        assert r.status == "stopped" and r.message == "stopped by a test" and r.n_epochs == 1
        assert r.weights_step == 2 and r.config == trainer.config
        for name, arr in r.weights().items():
            np.testing.assert_array_equal(arr, twice[name])
        np.testing.assert_array_equal(r.val_indices, np.arange(72, 96))


def test_a_failed_last_checkpoint_is_logged_and_the_epoch_copy_stays(spec, tmp_path, caplog):
    trainer = Trainer.from_config(tiny_config(spec), device="cpu")
    rec = RunFileCallback(tmp_path / "run.h5")
    start = _start(trainer)
    rec(start)
    rec(CheckpointEvent(step=5, epoch=1, weights=start.weights))
    bad = {k: np.full_like(v, np.nan) for k, v in start.weights.items()}
    with pytest.raises(RunFileError, match="non-finite"):  # at an epoch's end: the run stops
        rec(CheckpointEvent(step=6, epoch=2, weights=bad))
    with caplog.at_level(logging.ERROR):
        rec(CheckpointEvent(step=7, epoch=2, weights=bad, final=True))  # at the end: logged
    assert "non-finite" in caplog.text
    rec(FinishedEvent(RunStatus.FINISHED, "done", epochs_done=1, step=7))
    with RunReader(tmp_path / "run.h5") as r:
        assert r.weights_step == 5 and r.status == RunStatus.FINISHED


def test_start_run_checks_the_target_before_it_reads_the_data(spec, tmp_path):
    existing = tmp_path / "run.h5"
    existing.write_bytes(b"precious")
    with pytest.raises(RunFileError, match="file exists"):
        start_run(tiny_config("no-such-file.h5"), existing)
    with pytest.raises(RunFileError, match="does not exist"):
        start_run(tiny_config("no-such-file.h5"), tmp_path / "no" / "run.h5")
    with pytest.raises(RunFileError, match="is the data file"):
        start_run(tiny_config(spec), spec.rpartition(":")[0], force=True)
    with pytest.raises(DataError, match="no such file"):
        start_run(tiny_config("no-such-file.h5"), tmp_path / "new.h5")
    assert existing.read_bytes() == b"precious" and not (tmp_path / "new.h5").exists()
    check_not_data_file(str(tmp_path / "new.h5"), spec)  # no file there: nothing to refuse


def test_start_run_builds_the_config_from_the_data_and_writes_the_run(spec, tmp_path):
    cfg = tiny_config(os.path.relpath(spec, os.getcwd()), epochs=1)
    cfg = cfg.for_data(cfg.train.data, (64,))  # a shape the data will replace
    seen: list = []
    trainer = start_run(cfg, tmp_path / "run.h5", device="cpu", callbacks=[seen.append])
    assert trainer.config.model.data_shape == (1, 8, 8)
    assert trainer.config.train.data == spec and os.path.isabs(trainer.config.train.data)
    fin = trainer.run()
    assert fin.status == RunStatus.FINISHED and isinstance(seen[0], StartEvent)
    checkpoints = [e for e in seen if isinstance(e, CheckpointEvent)]
    assert [c.final for c in checkpoints] == [False, True] and isinstance(seen[-1], FinishedEvent)
    with RunReader(tmp_path / "run.h5") as r:  # every event was on disk before seen got it
        assert r.status == "finished" and r.config.train.data == spec and r.n_epochs == 1


def test_a_listener_that_cannot_start_stops_the_run_before_training(spec, tmp_path):
    def refuse(ev):
        if isinstance(ev, StartEvent):
            raise ConfigError("no room for the run")

    trainer = Trainer.from_config(tiny_config(spec), device="cpu", callbacks=[refuse])
    with pytest.raises(ConfigError, match="no room"):
        trainer.run()
    assert trainer.step == 0 and trainer.finished is None


def test_the_status_is_an_enum_written_as_its_value_and_interrupted_is_read(spec, tmp_path):
    assert [s.value for s in RunStatus] == [
        "running", "finished", "stopped", "diverged", "error", "interrupted"]
    trainer = Trainer.from_config(tiny_config(spec), device="cpu")
    path = tmp_path / "run.h5"
    rec = RunFileCallback(path)
    rec(_start(trainer))
    rec.writer.close()  # the writer went away without a status: still "running"
    with h5py.File(path, "r") as f:
        assert f["status"][()] == b"running"
    with RunReader(path) as r:
        assert r.effective_status() == RunStatus.RUNNING  # its writer (this process) lives
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    with h5py.File(path, "r+") as f:
        f.attrs["writer_pid"] = int(gone.stdout)
    with RunReader(path) as r:
        assert r.status == RunStatus.RUNNING and r.effective_status() == RunStatus.INTERRUPTED
    with h5py.File(path, "r+") as f:
        f["status"][()] = b"exploded"
    with pytest.raises(RunFileError, match="unknown run status 'exploded'") as info:
        RunReader(path)
    assert "\n" not in str(info.value)
