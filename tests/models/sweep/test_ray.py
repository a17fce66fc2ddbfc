"""The Ray backend on a local instance (``ray.init(num_cpus=2)``): a sweep with live events."""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray")

from models.io.runfile import RunReader  # noqa: E402
from models.sweep.manifest import RunStatus  # noqa: E402
from models.sweep.ray_backend import RayBackend, connect  # noqa: E402
from models.sweep.runner import Sweep  # noqa: E402
from models.sweep.spec import SweepSpec  # noqa: E402
from models.training.events import EpochEvent, FinishedEvent, StepEvent  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    assert connect(num_cpus=2)
    yield
    ray.shutdown()


def test_a_sweep_on_ray_streams_events_and_writes_its_files(local_ray, tiny, tmp_path) -> None:
    spec = SweepSpec(tiny(epochs=2), {"beta": [0.5, 4]})
    seen: dict[str, list] = {}
    backend = RayBackend(workers=2)
    try:
        records = Sweep(spec, tmp_path / "sw").run(backend, lambda rec, ev: seen.setdefault(rec.name, []).append(ev))
    finally:
        backend.close()
    assert [r.status for r in records] == [RunStatus.FINISHED, RunStatus.FINISHED]
    for r in records:
        evs = seen[r.name]
        steps = [e.step for e in evs if isinstance(e, StepEvent)]
        assert len(steps) > 2 and steps == sorted(steps)  # every step event reached the driver
        assert [e.epoch for e in evs if isinstance(e, EpochEvent)] == [1, 2]
        assert isinstance(evs[-1], FinishedEvent) and evs[-1].status == "finished"
        with RunReader(tmp_path / "sw" / r.file) as reader:
            assert reader.status == "finished" and reader.n_epochs == 2
            assert r.summary.rate == pytest.approx(reader.epochs()["val_rate"][-1])
    assert not os.path.exists(tmp_path / "sw" / ".ray-storage-probe")


def test_files_returned_as_bytes_and_a_stop(local_ray, tiny, tmp_path) -> None:
    backend = RayBackend(workers=1, return_files=True)
    try:
        done = backend.submit(tiny(epochs=1), tmp_path / "bytes.h5")
        long = backend.submit(tiny(epochs=100_000), tmp_path / "long.h5")
        assert done.wait(300).status == "finished"
        for ev in long.events(timeout=300):
            if isinstance(ev, EpochEvent):
                long.stop()
        assert long.status is RunStatus.STOPPED
        assert long.pid == done.pid  # the pool's one actor trained both, its imports made once
    finally:
        backend.close()
    with RunReader(tmp_path / "bytes.h5") as r:
        assert r.status == "finished" and r.n_epochs == 1
    with RunReader(tmp_path / "long.h5") as r:
        assert r.status == "stopped" and r.n_epochs >= 1


def test_a_worker_killed_marks_its_run_interrupted(local_ray, tiny, tmp_path) -> None:
    import signal

    backend = RayBackend(workers=1)
    try:
        h = backend.submit(tiny(epochs=100_000), tmp_path / "killed.h5")
        killed = False
        for ev in h.events(timeout=300):
            if isinstance(ev, EpochEvent) and not killed:
                assert h.pid is not None and h.pid != os.getpid()
                os.kill(h.pid, signal.SIGKILL)
                killed = True
        assert h.status is RunStatus.INTERRUPTED and "Ray worker died" in h.finished.message
        after = backend.submit(tiny(epochs=1), tmp_path / "after.h5")  # on a new actor
        assert after.wait(300).status == "finished" and after.pid not in (None, h.pid)
    finally:
        backend.close()
    with RunReader(tmp_path / "killed.h5") as r:  # shared storage: the file was written in place
        assert r.n_epochs >= 1


def test_warm_up_starts_the_pool_that_the_runs_then_use(local_ray, tiny, tmp_path) -> None:
    backend = RayBackend(workers=2)
    try:
        pids = backend.warm_up()
        assert len(set(pids)) == 2 and os.getpid() not in pids
        assert backend.warm_up() == pids  # already started: the same two, none added
        handles = [backend.submit(tiny(epochs=1, seed=s), tmp_path / f"r{s}.h5") for s in range(3)]
        assert [h.wait(300).status for h in handles] == ["finished"] * 3
        assert {h.pid for h in handles} <= set(pids)  # no run started a process of its own
    finally:
        backend.close()
