"""The local backend: runs in spawned child processes, events live, controls within a step."""

from __future__ import annotations

import os
import signal

import pytest

from models.io.runfile import RunReader
from models.sweep.local import LocalBackend
from models.sweep.manifest import RunStatus
from models.training.events import EpochEvent, FinishedEvent, StartEvent, StepEvent

WAIT = 240  # seconds: the first event comes after the child has imported torch on a busy machine


def _next(handle, kind, timeout=WAIT):
    for ev in handle.events(timeout=timeout):
        if isinstance(ev, kind):
            return ev
        assert not isinstance(ev, FinishedEvent), f"ended before a {kind.__name__}: {ev}"
    raise AssertionError("no events")


def test_two_workers_stream_events_and_write_files(tiny, tmp_path) -> None:
    seen: list = []
    with LocalBackend(workers=2, threads=1) as backend:
        handles = [
            backend.submit(tiny(epochs=2, seed=s), tmp_path / f"s{s}.h5", on_event=seen.append)
            for s in (0, 1)
        ]
        events = {h.name: list(h.events(timeout=WAIT)) for h in handles}
    for h in handles:
        evs = events[h.name]
        steps = [e.step for e in evs if isinstance(e, StepEvent)]
        assert steps and steps == sorted(steps) and len(steps) > 2  # streamed step by step
        assert [e.epoch for e in evs if isinstance(e, EpochEvent)] == [1, 2]
        assert isinstance(evs[-1], FinishedEvent) and evs[-1].status == "finished"
        # first what the run is (the app's session shows it), without weights to carry across
        start = evs[0]
        assert isinstance(start, StartEvent) and start.total_steps == steps[-1]
        assert start.config.train.seed == int(h.name[1]) and dict(start.weights) == {}
        assert h.status is RunStatus.FINISHED and h.pid is not None and h.pid != os.getpid()
        with RunReader(h.run_path) as r:
            assert r.status == "finished" and r.n_epochs == 2
    assert sum(isinstance(e, FinishedEvent) for e in seen) == 2  # the callbacks saw them too
    # the seeds differ, so the runs differ: each child trained its own configuration
    assert events["s0.h5"][-2].val_elbo != events["s1.h5"][-2].val_elbo


def test_pause_resume_stop_within_a_step_and_the_file_is_complete(tiny, tmp_path) -> None:
    with LocalBackend(workers=1, threads=1) as backend:
        h = backend.submit(tiny(epochs=100_000, log_every=1), tmp_path / "long.h5")
        _next(h, StepEvent)
        h.pause()
        assert h.wait(2.0) is None  # the pause is taken before the next step...
        h.poll()  # (the steps reported on the way)
        assert h.wait(2.0) is None
        after = [e for e in h.poll() if isinstance(e, StepEvent)]
        assert len(after) <= 1, f"{len(after)} steps reported while paused"  # ...and holds
        h.resume()
        _next(h, StepEvent)
        h.stop()
        fin = h.wait(WAIT)
    assert fin is not None and fin.status == "stopped" and h.status is RunStatus.STOPPED
    with RunReader(h.run_path) as r:
        assert r.status == "stopped" and r.n_steps >= 2


def test_kill_9_of_a_child_reports_interrupted_and_leaves_a_readable_file(tiny, tmp_path) -> None:
    with LocalBackend(workers=1, threads=1) as backend:
        h = backend.submit(tiny(epochs=100_000), tmp_path / "killed.h5")
        _next(h, EpochEvent)
        os.kill(h.pid, signal.SIGKILL)
        fin = h.wait(WAIT)
    assert fin is not None and fin.status == "interrupted" and h.status is RunStatus.INTERRUPTED
    assert "SIGKILL" in fin.message and fin.epochs_done >= 1
    with RunReader(h.run_path) as r:  # readable, with every epoch flushed before
        assert r.n_epochs >= 1 and r.writer_alive() is False


def test_a_run_that_cannot_start_ends_with_one_line(tiny, tmp_path) -> None:
    bad = tiny(epochs=1)
    bad.train.data = str(tmp_path / "missing.h5")
    with LocalBackend(workers=1, threads=1) as backend:
        h = backend.submit(bad, tmp_path / "bad.h5")
        stopped = backend.submit(tiny(epochs=1), tmp_path / "never.h5")  # waits for the one slot
        stopped.stop()
        fin = h.wait(WAIT)
        assert stopped.wait(WAIT).status == "stopped"
    assert fin.status == "error" and "no such file" in fin.message and "\n" not in fin.message
    assert not os.path.exists(tmp_path / "never.h5")


def test_a_runs_process_starts_with_the_trainer_imported_and_nothing_of_ours() -> None:
    # Each run's process paid ~2-3 s importing torch and the trainer; forked from a fork server
    # that imported them once, it starts with them (never a fork of this process: a GUI's).
    import sys

    from models.sweep.process import PRELOAD, start_context

    ctx = start_context()
    assert ctx.get_start_method() in ("forkserver", "spawn")
    if not sys.platform.startswith("linux"):
        pytest.skip("spawn off Linux: every child imports for itself")
    assert ctx.get_start_method() == "forkserver"
    r, w = ctx.Pipe(duplex=False)
    probe = "import sys; conn.send(sorted(m for m in NAMES if m in sys.modules)); conn.close()"
    names = ("torch", "h5py", *PRELOAD, "PySide6", "pytest")
    p = ctx.Process(target=exec, args=(probe, {"conn": w, "NAMES": names}))
    p.start()
    w.close()
    assert r.poll(120)
    present = r.recv()
    p.join(60)
    assert p.exitcode == 0
    assert {"torch", "h5py", *PRELOAD} <= set(present)
    assert "PySide6" not in present and "pytest" not in present  # nothing of this process


def test_warming_up_leaves_a_server_that_forks_runs_with_the_trainer_loaded() -> None:
    import sys

    from models.sweep.process import warm_up

    warm_up()  # returns once the server has imported what it preloads; a second call is quick
    warm_up()
    if sys.platform.startswith("linux"):
        from multiprocessing import forkserver

        assert forkserver._forkserver._forkserver_pid is not None  # the server is running
