"""Runs whose writer was killed: the app offers Recover / Open as is, in one dialog for several
files, recovers in a task, and reads such files without recovery too (issue 16, the app)."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

import explorer.recover as recover_mod
from models.io.runfile import RunReader
from models.training.events import RunStatus

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KILLED = r'''
import os, signal, sys
import numpy as np
from models.config import ModelConfig, RunConfig
from models.io.runfile import RunWriter

config = RunConfig(model=ModelConfig(arch="mlp", data_shape=(16,), latent_dim=2, hidden=(8,)))
weights = {"w": np.zeros((2, 2), np.float32)}
for path in sys.argv[1:]:
    if os.fork() == 0:
        w = RunWriter(path, config, weights, {"name": "toy"}, np.arange(4))
        w.save_weights(weights, step=1)
        w.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # the file stays marked open for write
    os.wait()
'''


@pytest.fixture
def killed(tmp_path):
    """make(n): n run files whose writer was killed (SIGKILL) after its first flush."""
    def make(n: int) -> list[str]:
        paths = [str(tmp_path / f"killed{i}.h5") for i in range(n)]
        subprocess.run([sys.executable, "-c", KILLED, *paths], check=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=REPO))
        for p in paths:
            with RunReader(p) as r:
                assert r.effective_status() is RunStatus.INTERRUPTED
            with pytest.raises(OSError):
                h5py.File(p, "r").close()  # no other HDF5 tool opens it yet
        return paths
    return make


@pytest.fixture
def asked(monkeypatch):
    """The recovery dialog replaced: records the files listed, answers ``asked.answer``."""
    class Asked(list):
        answer = recover_mod.RECOVER

    calls = Asked()

    def fake(parent, paths):
        calls.append(list(paths))
        return calls.answer
    monkeypatch.setattr(recover_mod, "ask_recover", fake)
    return calls


def test_recover_makes_a_killed_run_open_anywhere(window, killed, asked, qtbot, errors):
    (path,) = killed(1)
    with qtbot.waitSignal(window.recover_offer.recovered, timeout=60_000) as sig:
        assert window.open_path(path)
    assert asked == [[path]]
    assert [r.ok for r in sig.args[0]] == [True]
    with h5py.File(path, "r") as f:  # a normal HDF5 file now
        assert "status" in f
    session = window.runs.find(path)
    assert session is not None and session.status == "interrupted"
    assert path in window.recent_files() and errors == []


def test_open_as_is_reads_the_file_without_touching_it(window, killed, asked, errors):
    (path,) = killed(1)
    before = os.stat(path).st_mtime_ns
    asked.answer = recover_mod.AS_IS
    assert window.open_path(path)
    session = window.runs.find(path)
    assert session is not None and session.status == "interrupted"
    assert os.stat(path).st_mtime_ns == before
    with pytest.raises(OSError):
        h5py.File(path, "r").close()
    assert errors == []


def test_dropping_several_killed_runs_asks_once(window, killed, asked, finished_run, qtbot, errors):
    paths = killed(2)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(p) for p in [*paths, finished_run]])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.recover_offer.recovered, timeout=60_000):
        window.dropEvent(event)
    assert asked == [paths]  # one dialog listing both, not one per file
    assert window.runs.find(finished_run) is not None  # the good file opened as usual
    for p in paths:
        assert window.runs.find(p) is not None
        h5py.File(p, "r").close()
    assert errors == []


def test_a_finished_run_is_not_offered_recovery(window, finished_run, asked, errors):
    assert window.open_path(finished_run)
    assert asked == [] and window.runs.find(finished_run) is not None and errors == []


def test_the_dialog_lists_every_file_and_answers(qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    seen = {}

    def click():
        box = next(w for w in QApplication.topLevelWidgets()
                   if isinstance(w, QMessageBox) and w.isVisible())
        seen["text"] = box.text()
        next(b for b in box.buttons() if b.text() == "Open as is").click()

    QTimer.singleShot(200, click)
    assert recover_mod.ask_recover(None, ["/a/one.h5", "/b/two.h5"]) == recover_mod.AS_IS
    assert "one.h5" in seen["text"] and "two.h5" in seen["text"] and "2 runs" in seen["text"]
