"""Hundreds of background tasks in one app session, many cancelled midway: none may crash it.

Issue 11: the app died as exports finished (a segfault in libshiboken6 in the "export" thread, a
bus error in ``RunController._task_finished``) because a worker had two owners and its QThread
was dropped while Qt was still finishing it. This runs, at once and over and over, what starts
background work in the app: exports and diagnoses through the controller, encodings, the latent
explorer reloading on every run switch, a training run stopped midway, and real export child
processes interrupted midway. ``faulthandler`` prints every thread's stack if it crashes.

Exports through the controller and the explorer copy a ready ONNX file instead of tracing the
model in a child process (30 s each on a loaded 2-core machine); everything else is the app's
own path, task objects and threads included. ``tests/explorer/stress_app.py`` runs real exports
through File > Export under Xvfb.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import os
import shutil
import threading
import time

import numpy as np
from latent_helpers import third_party_decoder
from PySide6.QtCore import QObject, QTimer, Slot

from explorer import tasks
from explorer.jobs import export as export_job
from explorer.latent.encoding import TorchEncoder, encode_task
from explorer.tasks import Cancelled, Task, TaskStatus

ENCODINGS, DIAGNOSES, EXPORTS, SWITCHES, REAL_EXPORTS = 100, 30, 40, 60, 3


class GatedEncoder(TorchEncoder):
    """Holds its second batch until the GUI thread has cancelled the task: a cancel midway."""

    def __init__(self, vae) -> None:
        super().__init__(vae)
        self.gate = threading.Event()
        self.calls = 0

    def encode(self, x):
        self.calls += 1
        if self.calls == 2:
            self.gate.wait(30)
        return super().encode(x)


class Chains(QObject):
    """Keeps encodings, diagnoses, exports and run switches going at the same time."""

    def __init__(self, window, vae, x) -> None:
        super().__init__()
        self.window, self.c = window, window.controller
        self.vae, self.x = vae, x
        self.n = {"encode": 0, "diagnose": 0, "export": 0, "switch": 0}
        self.status = {"encode": [], "diagnose": [], "export": []}
        self.gates: dict = {}
        self.c.diagnoseBusyChanged.connect(self.diagnose_next)
        self.c.exportBusyChanged.connect(self.export_next)
        self.switch_timer = QTimer(self)
        self.switch_timer.setInterval(25)
        self.switch_timer.timeout.connect(self.switch_next)

    def start(self) -> None:
        for _ in range(4):
            self.encode_next()
        self.diagnose_next(False)
        self.export_next(False)
        self.switch_timer.start()

    @property
    def done(self) -> bool:
        return (self.n["encode"] >= ENCODINGS and len(self.status["encode"]) == ENCODINGS
                and self.n["diagnose"] >= DIAGNOSES and not self.c.diagnose_busy
                and self.n["export"] >= EXPORTS and not self.c.export_busy
                and self.n["switch"] >= SWITCHES)

    # --- encodings: four at a time; every third cancelled after its first batch
    def encode_next(self) -> None:
        if self.n["encode"] >= ENCODINGS:
            return
        self.n["encode"] += 1
        if self.n["encode"] % 3 == 0:
            encoder = GatedEncoder(self.vae)
            task = Task("encode", encode_task, encoder, self.x, 50)
            self.gates[task] = encoder.gate
            task.progress.connect(self.cancel_sender)
        else:
            task = Task("encode", encode_task, TorchEncoder(self.vae), self.x, 50)
        task.finished.connect(self.encoded)
        task.start()

    @Slot(int, int)
    def cancel_sender(self, _done: int, _total: int) -> None:
        task = self.sender()
        task.cancel()  # after its first batch, during its second
        gate = self.gates.pop(task, None)
        if gate is not None:
            gate.set()

    @Slot(object)
    def encoded(self, status: TaskStatus) -> None:
        self.status["encode"].append(status)
        self.encode_next()

    # --- diagnoses: one at a time (the controller's rule); every fourth cancelled at once
    @Slot(bool)
    def diagnose_next(self, busy: bool) -> None:
        if busy or self.n["diagnose"] >= DIAGNOSES:
            return
        self.n["diagnose"] += 1
        sessions = self.window.runs.sessions()
        assert self.c.diagnose(2, 20, session=sessions[self.n["diagnose"] % len(sessions)])
        if self.n["diagnose"] % 4 == 0:
            self.c.cancel_diagnosis()

    # --- exports: one at a time; every fourth cancelled midway
    @Slot(bool)
    def export_next(self, busy: bool) -> None:
        if busy or self.n["export"] >= EXPORTS:
            return
        self.n["export"] += 1
        out = str(self.window.controller.runs_folder) + f"-export-{self.n['export'] % 3}.onnx"
        assert self.c.export_decoder(out)
        if self.n["export"] % 4 == 0:
            QTimer.singleShot(5, self.c.cancel_export)

    # --- run switches: the explorer cancels its load and starts the next run's
    @Slot()
    def switch_next(self) -> None:
        if self.n["switch"] >= SWITCHES:
            self.switch_timer.stop()
            return
        self.n["switch"] += 1
        self.window.act_next_run.trigger()


#: Seconds after which the stress test counts as hung.
HANG_S = 600


def test_hundreds_of_background_tasks_in_one_session(window, finished_run, tiny_config, tmp_path,
                                                     qtbot, errors, monkeypatch, request):
    import torch

    from models.io.runfile import RunReader

    faulthandler.enable()
    # A deadlock (seen once: the GUI thread in shiboken's deferred deletion of a QMenu, blocked
    # on a Qt mutex while holding the GIL) prints every thread's stack and ends the run instead
    # of hanging the suite; the test takes well under a minute.
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    request.addfinalizer(faulthandler.cancel_dump_traceback_later)
    t0 = time.perf_counter()
    started0 = tasks.STARTED
    c = window.controller
    c.runs_folder = str(tmp_path / "runs")

    # Exports copy a real (tiny, third-party) ONNX decoder, checking for a cancel as they go;
    # targets named "real" go through the real child process.
    decoder, _w, _b = third_party_decoder(tmp_path / "shared.onnx")
    real_export = export_job.export_run_decoder

    def quick_export(run_path, out_path, encoder_path=None, timeout=900.0, should_stop=None):
        if os.path.basename(str(out_path)).startswith("real"):
            return real_export(run_path, out_path, encoder_path, timeout, should_stop)
        for _ in range(3):
            if should_stop is not None and should_stop():
                raise Cancelled()
            time.sleep(0.005)
        shutil.copy(decoder, out_path)
        return f"decoder -> {out_path}"

    monkeypatch.setattr(export_job, "export_run_decoder", quick_export)

    runs = [finished_run]
    for k in range(2):
        runs.append(str(tmp_path / f"copy-{k}.h5"))
        shutil.copy(finished_run, runs[-1])
    for path in runs:
        assert window.open_path(path)
    window.latent_panel.dock.show()
    window.latent_panel.dock.raise_()  # on screen: every run switch reloads the explorer

    with RunReader(finished_run) as reader:
        vae = reader.load_model("cpu")
    x = np.random.default_rng(0).random((300, 1, 8, 8)).astype(np.float32)
    chains = Chains(window, vae, x)
    chains.start()
    qtbot.waitUntil(lambda: chains.done, timeout=120_000)

    # Real export child processes, interrupted midway: the old file stays as it was.
    target = tmp_path / "real-decoder.onnx"
    target.write_bytes(b"the user's old decoder")
    for _ in range(REAL_EXPORTS):
        assert c.export_decoder(str(target))
        qtbot.waitUntil(lambda: bool(export_job._CHILDREN), timeout=30_000)
        c.cancel_export()
        qtbot.waitUntil(lambda: not c.export_busy, timeout=30_000)
        assert target.read_bytes() == b"the user's old decoder"

    # A training run, stopped midway, while the explorer follows the current run.
    session = window.start_training(dataclasses.replace(
        tiny_config, train=dataclasses.replace(tiny_config.train, epochs=400)))
    qtbot.waitUntil(lambda: len(session.steps) >= 2, timeout=60_000)
    c.stop()
    qtbot.waitUntil(lambda: not c.is_training, timeout=60_000)
    assert session.status == "stopped"

    panel = window.latent_panel
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    qtbot.waitUntil(lambda: not tasks.live_tasks(), timeout=30_000)  # every task released
    count = tasks.STARTED - started0
    seconds = time.perf_counter() - t0
    print(f"\n{count} background tasks in {seconds:.1f} s: {chains.n}")

    assert errors == [], errors
    assert count >= 200
    assert chains.status["encode"].count(TaskStatus.CANCELLED) == ENCODINGS // 3
    assert chains.status["encode"].count(TaskStatus.FINISHED) == ENCODINGS - ENCODINGS // 3
    assert torch.isfinite(next(vae.parameters())).all()
    # The app still works: a last diagnosis of the current run arrives.
    current = window.runs.current
    with qtbot.waitSignal(current.diagnosisChanged, timeout=60_000):
        assert c.diagnose(2, 20)
