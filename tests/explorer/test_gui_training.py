"""Training in the app: a worker thread drives the plots; pause, resume, stop; closing mid-run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.io.runfile import RunReader


def _long(config, epochs: int = 400):
    """The tiny run, but long enough to be caught mid-run (stopped well before it ends)."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))


def _xy(item):
    x, y = item.getData()
    return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))


def test_training_emits_epochs_and_the_plots_hold_the_run_file(window, tiny_config, qtbot, wait_idle, errors):
    session = window.start_training(tiny_config)
    assert session is not None and window.runs.current is session
    with qtbot.waitSignal(session.epochsAppended, timeout=60_000):
        pass
    wait_idle(window)
    assert errors == []
    assert session.status == "finished"
    assert len(session.epochs) == 2
    assert session.total_steps == 18  # 180 training rows / 20 per batch x 2 epochs
    # The progress line names the run it describes.
    assert window.training_panel.progress_text().startswith(f"{session.name}: epoch 2/2 · step 18/18")
    assert session.config.model.data_shape == (1, 8, 8)

    for panel in (window.rd_panel, window.curves_panel, window.kl_panel):
        panel.flush()
    with RunReader(session.path) as reader:
        assert reader.status == "finished"
        steps, epochs = reader.steps(), reader.epochs()
    assert len(steps["step"]) == len(session.steps) >= 9  # a row every 2 steps (and at epoch ends)

    # Rate-distortion plane: the training trajectory and the validation points are the file's.
    rd = window.rd_panel.run_items(session)
    x, y = _xy(rd.train)
    np.testing.assert_allclose(x, steps["rate"])
    np.testing.assert_allclose(y, steps["distortion"])
    x, y = _xy(rd.val)
    np.testing.assert_allclose(x, epochs["val_rate"])
    np.testing.assert_allclose(y, epochs["val_distortion"])
    # The slope line is the beta in effect through the latest point.
    beta = steps["beta"][-1]
    assert window.rd_panel.beta_value == pytest.approx(beta)
    # The guides follow the view, which auto-ranges to the data when it paints.
    qtbot.waitUntil(lambda: len(_xy(window.rd_panel.beta_curve)[0]) == 2, timeout=5000)
    (x0, x1), (y0, y1) = _xy(window.rd_panel.beta_curve)
    assert (y1 - y0) / (x1 - x0) == pytest.approx(-beta)
    r, d = steps["rate"][-1], steps["distortion"][-1]
    assert y0 + (r - x0) * (-beta) == pytest.approx(d)
    # Lines of equal ELBO: segments of slope -1, one label each.
    x, y = _xy(window.rd_panel.iso_curve)
    assert len(window.rd_panel.iso_values) >= 2 and len(x) == 2 * len(window.rd_panel.iso_values)
    np.testing.assert_allclose(x + y, np.repeat(window.rd_panel.iso_values, 2))

    # Curves: ELBO, D and R against step, train and validation.
    curves = window.curves_panel.run_items(session)
    for key in ("elbo", "distortion", "rate"):
        x, y = _xy(curves.train[key])
        np.testing.assert_array_equal(x, steps["step"])
        np.testing.assert_allclose(y, steps[key])
        x, y = _xy(curves.val[key])
        np.testing.assert_array_equal(x, epochs["step"])
        np.testing.assert_allclose(y, epochs[f"val_{key}"])

    # KL bars: the latest step's KL per dimension; collapse judged by the latest activity.
    kl = window.kl_panel
    np.testing.assert_allclose(kl.bar_values, steps["kl_per_dim"][-1])
    np.testing.assert_array_equal(kl.collapsed, epochs["activity_per_dim"][-1] <= 0.01)
    np.testing.assert_allclose(kl.heat_data, steps["kl_per_dim"])

    # Diagnosis: the last epoch's figures and verdict.
    diag = window.diagnosis_panel
    assert diag.values["active_units"].text() == f"{int(epochs['active_units'][-1])} of 3"
    assert diag.values["mutual_info"].text().startswith(f"{epochs['mutual_info'][-1]:.3f} nats")
    assert diag.verdict.text() == epochs["verdict"][-1]
    assert window.training_panel.progress.value() == 1000


def test_sorted_bars_and_activity_view(window, tiny_config, qtbot, wait_idle):
    session = window.start_training(tiny_config)
    wait_idle(window)
    kl = window.kl_panel
    kl.order_combo.setCurrentIndex(kl.order_combo.findData("sorted"))
    latest = session.steps["kl_per_dim"][-1]
    np.testing.assert_allclose(kl.bar_values, np.sort(latest)[::-1])
    np.testing.assert_array_equal(kl.bar_dims, np.argsort(-latest, kind="stable"))
    kl.show_combo.setCurrentIndex(kl.show_combo.findData("activity"))
    act = session.epochs["activity_per_dim"][-1]
    np.testing.assert_allclose(kl.bar_values, np.sort(act)[::-1])
    assert kl.threshold.value() == pytest.approx(np.log10(0.01))
    kl.log_check.setChecked(False)
    assert kl.threshold.value() == pytest.approx(0.01)


def test_pause_resume_and_stop(window, tiny_config, qtbot, wait_idle, errors):
    import sys

    from explorer.tasks import LIVE_SWITCH_INTERVAL

    before = sys.getswitchinterval()
    session = window.start_training(_long(tiny_config))
    qtbot.waitUntil(lambda: len(session.steps) >= 2, timeout=60_000)
    assert window.controller.state == "running"
    # The GUI thread gets the GIL back sooner while training (responsiveness), as before after.
    assert sys.getswitchinterval() == pytest.approx(LIVE_SWITCH_INTERVAL) != before

    window.training_panel.pause_button.click()
    assert window.controller.state == "paused" and session.status == "paused"
    assert window.training_panel.pause_button.text() == "Resume"
    qtbot.wait(300)  # a step in flight may still land
    n = len(session.steps)
    qtbot.wait(700)
    assert len(session.steps) == n, "steps arrived while paused"

    window.training_panel.pause_button.click()
    assert window.controller.state == "running"
    qtbot.waitUntil(lambda: len(session.steps) > n + 2, timeout=30_000)

    window.training_panel.stop_button.click()
    wait_idle(window)
    assert session.status == "stopped"
    assert sys.getswitchinterval() == pytest.approx(before)
    assert errors == []
    assert window.training_panel.start_button.isEnabled()
    with RunReader(session.path) as reader:
        assert reader.status == "stopped"
        assert reader.n_steps == len(session.steps)
        assert reader.n_epochs == len(session.epochs)
        assert len(session.epochs) < 400


def test_closing_mid_run_leaves_a_complete_run_file(make_window, tiny_config, qtbot, errors):
    window = make_window()
    window.show()
    session = window.start_training(_long(tiny_config))
    qtbot.waitUntil(lambda: len(session.epochs) >= 1, timeout=60_000)
    path = session.path
    window.close()  # stops the worker and waits for it
    assert not window.controller.is_training
    with RunReader(path) as reader:
        assert reader.status == "stopped"
        assert reader.n_epochs >= 1
        assert reader.weights_step > 0
        model = reader.load_model()
        assert model.latent_dim == 3
    assert errors == []


def test_a_second_start_while_training_is_refused(window, tiny_config, qtbot, wait_idle, errors):
    first = window.start_training(_long(tiny_config))
    assert window.start_training(tiny_config) is None
    assert len(errors) == 1 and "already" in errors[0]
    assert len(window.runs) == 1
    window.controller.stop()
    wait_idle(window)
    assert first.status == "stopped"


def test_a_diverging_run_shows_one_error_and_the_app_keeps_running(window, tiny_config, qtbot,
                                                                      wait_idle, errors):
    cfg = dataclasses.replace(
        tiny_config,
        model=dataclasses.replace(tiny_config.model, likelihood="gaussian", obs_std=None),
        train=dataclasses.replace(tiny_config.train, lr=1e6, epochs=20),
    )
    session = window.start_training(cfg)
    wait_idle(window)
    assert session.status == "diverged", session.message
    assert len(errors) == 1 and "diverged" in errors[0]
    # The app goes on: another run starts and finishes.
    again = window.start_training(tiny_config)
    wait_idle(window)
    assert again.status == "finished"
    assert len(errors) == 1


def test_bad_settings_show_one_error_and_start_nothing(window, qtbot, errors):
    panel = window.training_panel
    panel.hidden_edit.setText("64, lots")
    panel.start_button.click()
    assert len(errors) == 1 and "hidden" in errors[0]
    panel.hidden_edit.setText("64")
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("hdf5"))
    panel.start_button.click()
    assert len(errors) == 2 and "HDF5" in errors[1]
    assert len(window.runs) == 0 and not window.controller.is_training


def test_a_run_that_cannot_load_its_data_reports_it(window, tiny_config, tmp_path, qtbot, wait_idle, errors):
    cfg = dataclasses.replace(tiny_config, train=dataclasses.replace(
        tiny_config.train, data=str(tmp_path / "missing.h5")))
    session = window.start_training(cfg)
    wait_idle(window)
    assert session.status == "error"
    assert len(errors) == 1 and "missing.h5" in errors[0]
