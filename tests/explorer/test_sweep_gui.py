"""Training out of the GUI's process, sweeps from the app, the frontier on the plane."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from explorer.jobs.sweep import SweepJob
from explorer.panels.frontier import frontier_lines, latest_validation
from models.sweep.spec import SweepSpec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _xy(item):
    x, y = item.getData()
    return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))


def test_a_run_started_from_the_app_trains_in_another_process(window, tiny_config, wait_idle, errors):
    session = window.start_training(tiny_config)
    wait_idle(window)
    assert session.status == "finished" and errors == []
    assert session.pid is not None and session.pid != os.getpid()


SCRIPT = textwrap.dedent("""
    import json, os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication
    from models.config import ModelConfig, RunConfig, TrainConfig
    app = QApplication([])
    from explorer.main_window import MainWindow
    w = MainWindow(settings=QSettings(sys.argv[2], QSettings.Format.IniFormat), torch_threads=1)
    w.controller.runs_folder = sys.argv[3]
    cfg = RunConfig(model=ModelConfig(arch="mlp", data_shape=(1, 8, 8), latent_dim=3, hidden=(16,)),
                    train=TrainConfig(data=sys.argv[1], epochs=1, batch_size=20, log_every=2))
    s = w.start_training(cfg)
    while w.controller.is_training:
        app.processEvents()
        w.controller.thread().msleep(20)
    app.processEvents()
    print(json.dumps({"status": str(s.status), "epochs": len(s.epochs),
                      "trainer": "models.training.trainer" in sys.modules,
                      "optim": "torch.optim" in sys.modules}))
    w.close()
    from explorer.app import delete_before_exit
    delete_before_exit(w)  # as the app's main does
""")


def test_the_gui_process_imports_no_training_code(tiny_h5, tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"{tiny_h5}:images", str(tmp_path / "s.ini"), str(tmp_path / "runs")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": REPO},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"status": "finished", "epochs": 1, "trainer": False, "optim": False}


def test_the_sweep_dialog_builds_a_beta_sweep_and_refuses_bad_values(window, tiny_config, errors):
    window.training_panel.set_config(tiny_config)
    dialog = window.sweeps.new_sweep(exec_dialog=False)
    job = dialog.job()
    assert job.spec.varied == {"beta": (0.25, 1.0, 4.0, 16.0)}  # log-spaced by default
    assert job.spec.base.train.data == tiny_config.train.data
    assert job.backend == "local" and job.workers * (job.threads or 1) >= 1
    dialog.log_low.setValue(0.5)
    dialog.log_high.setValue(8.0)
    dialog.log_n.setValue(3)
    dialog._fill_log_betas()
    assert dialog.job().spec.varied["beta"] == (0.5, 2.0, 8.0)
    dialog.vary_checks["seed"].setChecked(True)
    dialog.value_edits["seed"].setText("0, 1")
    assert len(dialog.job().spec.runs) == 6
    dialog.value_edits["beta"].setText("1, lots")
    dialog.accept()
    assert len(errors) == 1 and "lots" in errors[0]
    assert dialog.result() != dialog.DialogCode.Accepted
    dialog.vary_checks["latent_dim"].setChecked(True)
    dialog.value_edits["beta"].setText("1, 2")
    dialog.value_edits["latent_dim"].setText("2, 3")
    dialog.accept()  # three varied settings: one line, the dialog stays
    assert len(errors) == 2 and "one or two" in errors[1]


def test_a_sweep_trains_live_and_the_plane_draws_its_frontier(window, tiny_config, tmp_path, qtbot,
                                                              errors):
    spec = SweepSpec(tiny_config, {"beta": [2.0, 0.5]})
    ui = window.sweeps
    assert ui.start_sweep(SweepJob(spec, str(tmp_path / "sweep"), workers=2, threads=1))
    assert window.act_stop_sweep.isEnabled() and not window.act_new_sweep.isEnabled()
    qtbot.waitUntil(lambda: not ui.controller.busy, timeout=180_000)
    assert errors == []
    sessions = window.runs.sessions()
    assert sorted(s.settings["beta"] for s in sessions) == [0.5, 2.0]
    for s in sessions:
        assert s.status == "finished" and len(s.epochs) == 2 and s.pid not in (None, os.getpid())
        assert s.sweep == str(tmp_path / "sweep")
        assert s.config.objective.beta == s.settings["beta"]
    window.rd_panel.flush()
    # One frontier: the runs' latest validation points, in the order of beta.
    (line,) = frontier_lines(sessions)
    assert [s.settings["beta"] for s in line.sessions] == [0.5, 2.0]
    x, y = _xy(window.rd_panel.frontier.lines[0])
    expected = np.array([latest_validation(s) for s in line.sessions])
    np.testing.assert_allclose(np.c_[x, y], expected)
    assert not window.rd_panel.frontier.lines[1].isVisible()
    # No IWAE known yet: no boundary. A diagnosis's IWAE gives D = H - R with H = -best IWAE.
    assert len(_xy(window.rd_panel.frontier.boundary)[0]) == 0
    best = max(-(float(s.epochs["val_elbo"][-1])) for s in sessions)
    sessions[0].set_diagnosis({"iwae": -best + 1.0, "active_units": 2})
    sessions[1].set_diagnosis({"iwae": -best - 5.0, "active_units": 1})
    window.rd_panel.flush()
    x, y = _xy(window.rd_panel.frontier.boundary)
    h = best - 1.0
    np.testing.assert_allclose(x + y, [h, h])
    assert window.rd_panel.frontier.entropy == pytest.approx(h)
    # Clicking a frontier point makes its run current; the other panels follow the current run.
    target = line.sessions[0]
    window.runs.set_current(line.sessions[1])
    assert window.rd_panel.select_at(*latest_validation(target)) is target
    assert window.runs.current is target and window.kl_panel.session is target
    # Each run's file and the manifest are the record.
    with open(tmp_path / "sweep" / "sweep.json") as fh:
        manifest = json.load(fh)
    assert {r["status"] for r in manifest["runs"]} == {"finished"}


def test_stopping_a_sweep_stops_every_run_within_a_step(window, tiny_config, tmp_path, qtbot):
    import sys

    from explorer.tasks import LIVE_SWITCH_INTERVAL

    long = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, epochs=400))
    ui = window.sweeps
    before = sys.getswitchinterval()
    ui.start_sweep(SweepJob(SweepSpec(long, {"beta": [1.0, 2.0]}), str(tmp_path / "sw"), workers=2,
                            threads=1))
    qtbot.waitUntil(lambda: len(window.runs) == 2 and all(len(s.steps) >= 2 for s in window.runs),
                    timeout=120_000)
    # The GUI thread gets the GIL back sooner while the sweep's runs stream (as for one run).
    assert sys.getswitchinterval() == pytest.approx(LIVE_SWITCH_INTERVAL) != before
    window.act_stop_sweep.trigger()
    qtbot.waitUntil(lambda: not ui.controller.busy, timeout=60_000)
    assert sys.getswitchinterval() == pytest.approx(before)
    assert {str(s.status) for s in window.runs} == {"stopped"}
    assert all(len(s.epochs) < 400 for s in window.runs)
