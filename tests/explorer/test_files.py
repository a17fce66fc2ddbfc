"""Files in the app: open and watch runs, bad files, data sets, export, images, settings, drops."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage

from models.io.runfile import RunReader

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _xy(item):
    x, y = item.getData()
    return (np.zeros(0), np.zeros(0)) if x is None else (np.asarray(x), np.asarray(y))


def _assert_session_matches_file(window, session, path):
    for panel in (window.rd_panel, window.curves_panel, window.kl_panel):
        panel.flush()
    with RunReader(path) as reader:
        steps, epochs = reader.steps(), reader.epochs()
    assert len(session.steps) == len(steps["step"])
    assert len(session.epochs) == len(epochs["epoch"])
    for name in ("step", "elbo", "distortion", "rate", "beta"):
        np.testing.assert_allclose(session.steps[name], steps[name])
    np.testing.assert_allclose(session.steps["kl_per_dim"], steps["kl_per_dim"])
    x, y = _xy(window.rd_panel.run_items(session).train)
    np.testing.assert_allclose(x, steps["rate"])
    np.testing.assert_allclose(y, steps["distortion"])
    x, y = _xy(window.curves_panel.run_items(session).val["elbo"])
    np.testing.assert_allclose(y, epochs["val_elbo"])
    assert session.verdicts == list(epochs["verdict"])


def test_open_a_finished_run(window, finished_run, errors):
    assert window.open_path(finished_run)
    session = window.runs.current
    assert session is not None and session.status == "finished"
    assert session.config.objective.beta == 2.0
    assert session.total_steps == 18
    assert window.controller.watcher_for(session) is None  # nothing to follow
    _assert_session_matches_file(window, session, finished_run)
    assert window.diagnosis_panel.verdict.text() == session.verdicts[-1]
    assert finished_run in window.run_file_label.full_text()
    assert window.recent_files()[0] == os.path.abspath(finished_run)
    # Opening it again selects it instead of adding a copy.
    assert window.open_path(finished_run)
    assert len(window.runs) == 1
    assert errors == []


def test_watch_a_run_that_another_process_writes(window, tiny_h5, tmp_path, qtbot, errors):
    out = str(tmp_path / "live.h5")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    log = tmp_path / "train.log"
    log_file = open(log, "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "main.py"), "train", "--data", f"{tiny_h5}:images",
         "--latent-dim", "3", "--hidden", "16", "--epochs", "2000", "--batch-size", "20",
         "--log-every", "2", "--out", out],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
    )
    try:
        qtbot.waitUntil(lambda: os.path.exists(out), timeout=60_000)
        assert window.open_path(out)
        session = window.runs.current
        watcher = window.controller.watcher_for(session)
        assert watcher is not None and watcher.watching and session.status == "running"
        assert session.source == "watching"
        n0, e0 = len(session.steps), len(session.epochs)
        # The plots grow as the other process writes.
        qtbot.waitUntil(lambda: len(session.epochs) >= e0 + 2, timeout=60_000)
        assert len(session.steps) > n0
        window.rd_panel.flush()
        assert len(_xy(window.rd_panel.run_items(session).train)[0]) == len(session.steps)
        proc.send_signal(signal.SIGINT)  # the CLI stops cleanly: status "stopped"
        assert proc.wait(60) == 130, log.read_text()
        qtbot.waitUntil(lambda: session.status == "stopped", timeout=30_000)
        qtbot.waitUntil(lambda: not watcher.watching, timeout=10_000)
        assert window.controller.watcher_for(session) is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log_file.close()
    _assert_session_matches_file(window, session, out)
    assert errors == []


def test_a_watched_run_whose_writer_is_killed_is_marked_interrupted(window, tiny_h5, tmp_path, qtbot,
                                                                     errors):
    out = str(tmp_path / "killed.h5")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "main.py"), "train", "--data", f"{tiny_h5}:images",
         "--latent-dim", "3", "--hidden", "16", "--epochs", "2000", "--batch-size", "20",
         "--out", out],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        qtbot.waitUntil(lambda: os.path.exists(out), timeout=60_000)
        assert window.open_path(out)
        session = window.runs.current
        qtbot.waitUntil(lambda: len(session.epochs) >= 1, timeout=60_000)
        assert session.status == "running"
        proc.kill()  # SIGKILL: the file keeps saying "running"
        proc.wait()
        qtbot.waitUntil(lambda: session.status == "interrupted", timeout=10_000)
        assert f"pid {proc.pid}" in session.message
        # watching ends once the follow task has been released (a slot after its last signal)
        qtbot.waitUntil(lambda: window.controller.watcher_for(session) is None, timeout=10_000)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with RunReader(out) as reader:
        assert reader.status == "running" and reader.writer_alive() is False
        assert reader.n_epochs >= 1
    assert errors == []


@pytest.fixture
def bad_files(tmp_path, finished_run):
    files = {}
    files["random bytes"] = tmp_path / "random.h5"
    files["random bytes"].write_bytes(np.random.default_rng(0).bytes(4096))
    files["empty"] = tmp_path / "empty.h5"
    files["empty"].write_bytes(b"")
    files["truncated run"] = tmp_path / "truncated.h5"
    with open(finished_run, "rb") as f:
        data = f.read()
    files["truncated run"].write_bytes(data[: len(data) // 2])
    files["marked run, no content"] = tmp_path / "hollow.h5"
    with h5py.File(files["marked run, no content"], "w") as f:
        f.attrs["format"] = "latent-explorer-run"
        f.attrs["format_version"] = 1
    files["HDF5 without numeric arrays"] = tmp_path / "text.h5"
    with h5py.File(files["HDF5 without numeric arrays"], "w") as f:
        f["notes"] = "no numbers here"
    files["no such file"] = tmp_path / "missing.h5"
    files["a folder"] = tmp_path / "folder.h5"
    files["a folder"].mkdir()
    files["random bytes named .onnx"] = tmp_path / "decoder.onnx"
    files["random bytes named .onnx"].write_bytes(np.random.default_rng(1).bytes(4096))
    return {k: str(v) for k, v in files.items()}


def test_each_bad_file_gives_one_clear_error_and_the_app_keeps_running(window, bad_files, finished_run, errors):
    panel = window.training_panel
    form = (panel.data_combo.currentData(), panel.file_edit.text())
    for what, path in bad_files.items():
        before = len(errors)
        assert window.open_path(path) is False, what
        assert len(errors) == before + 1, f"{what}: {errors[before:]}"
        message = errors[-1]
        assert os.path.basename(path) in message, f"{what}: {message}"
        assert "\n" not in message and "Traceback" not in message
        assert len(window.runs) == 0, what
        # Nothing half-done: the training form as it was, no recent-file entry.
        assert (panel.data_combo.currentData(), panel.file_edit.text()) == form, what
        assert os.path.abspath(path) not in window.recent_files(), what
    # Still working: a good file opens.
    assert window.open_path(finished_run)
    assert len(window.runs) == 1


def test_open_a_data_set_lists_its_arrays_and_trains_on_it(window, tiny_h5, qtbot, wait_idle, errors):
    assert window.open_path(tiny_h5)  # not a run file: opened as a data set
    panel = window.training_panel
    assert panel.data_combo.currentData() == "hdf5"
    arrays = [panel.array_combo.itemData(i).path for i in range(panel.array_combo.count())]
    assert arrays == ["images"]
    labels = [panel.labels_combo.itemData(i) for i in range(panel.labels_combo.count())]
    assert labels == ["", "labels"]
    panel.labels_combo.setCurrentIndex(1)
    panel.latent_spin.setValue(2)
    panel.hidden_edit.setText("16")
    panel.epochs_spin.setValue(1)
    panel.batch_spin.setValue(30)
    cfg = panel.config()
    assert cfg.train.data == f"{tiny_h5}:images" and cfg.train.labels == "labels"
    assert cfg.model.data_shape == (1, 8, 8)
    panel.start_button.click()
    wait_idle(window)
    session = window.runs.current
    assert session.status == "finished"
    assert session.dataset_info["labels"] == "labels"
    assert errors == []


def test_export_the_decoder_to_onnx(window, finished_run, tmp_path, qtbot, errors):
    from models.io.onnx_runtime import OnnxDecoder

    window.open_path(finished_run)
    out = str(tmp_path / "decoder.onnx")
    with qtbot.waitSignal(window.controller.exportFinished, timeout=120_000) as sig:
        assert window.controller.export_decoder(out)
        window._update_actions()  # anything that refreshes the actions keeps Export off meanwhile
        assert not window.act_export.isEnabled()
    assert "decoder" in sig.args[0]
    dec = OnnxDecoder(out)
    assert dec.latent_dim == 3
    images = dec.decode(np.zeros((2, 3), dtype=np.float32))
    assert images.shape[0] == 2 and np.all((images >= 0) & (images <= 1))
    assert errors == []
    # A failed export: one error, no file, the app goes on.
    bad = str(tmp_path / "no" / "such" / "folder" / "decoder.onnx")
    window.controller.export_decoder(bad)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=120_000)
    assert errors[0].startswith("export failed") and not os.path.exists(bad)
    assert window.act_export.isEnabled()


def test_closing_during_an_export_cancels_it_and_keeps_the_old_file(window, finished_run, tmp_path,
                                                                    qtbot, errors):
    from explorer.jobs import export as workers

    assert window.open_path(finished_run)
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "decoder.onnx"
    out.write_bytes(b"the user's old decoder")
    assert window.controller.export_decoder(str(out))
    qtbot.waitUntil(lambda: bool(workers._CHILDREN), timeout=30_000)  # the child has started
    assert window.controller.shutdown()  # what closing the window does
    assert out.read_bytes() == b"the user's old decoder"
    assert sorted(p.name for p in folder.iterdir()) == ["decoder.onnx"]  # no temporary left
    assert not workers._CHILDREN


def test_diagnose_on_demand_shows_the_elbo_gap(window, finished_run, qtbot, errors):
    window.open_path(finished_run)
    session = window.runs.current
    panel = window.diagnosis_panel
    assert "Diagnose now" in panel.values["elbo_gap"].text()
    panel.iw_spin.setValue(5)
    panel.n_spin.setValue(20)
    with qtbot.waitSignal(session.diagnosisChanged, timeout=120_000) as sig:
        panel.button.click()
        assert not panel.button.isEnabled()
    d = sig.args[0]
    assert d["source"] == "diagnose" and d["n_samples"] == 20
    assert d["elbo_gap"] == pytest.approx(d["iwae"] - d["elbo"])
    assert panel.values["elbo_gap"].text() == f"{d['elbo_gap']:.3f} nats"
    qtbot.waitUntil(panel.button.isEnabled, timeout=10_000)
    assert errors == []


def test_save_plots_as_images(window, finished_run, tmp_path, errors):
    window.open_path(finished_run)
    for panel in (window.rd_panel, window.curves_panel, window.kl_panel):
        path = str(tmp_path / f"{panel.plot_title}.png")
        assert window.save_plot(path, panel)
        image = QImage(path)
        assert not image.isNull() and image.width() > 100
    assert errors == []
    assert not window.save_plot(str(tmp_path / "missing" / "x.png"), window.rd_panel)
    assert len(errors) == 1 and "x.png" in errors[0]


def test_several_runs_overlay_with_a_legend(window, finished_run, tmp_path, errors):
    copy = str(tmp_path / "second.h5")
    shutil.copy(finished_run, copy)
    window.open_path(finished_run)
    window.open_path(copy)
    assert len(window.runs) == 2
    labels = [label.text for _item, label in window.rd_panel.legend.items]
    assert labels == ["finished (β=2)", "second (β=2)"]
    assert window.run_combo.count() == 2 and window.run_combo.currentIndex() == 1
    window.run_combo.setCurrentIndex(0)
    assert window.runs.current.name == "finished"
    assert window.kl_panel.session is window.runs.current
    window.close_current_run()
    assert len(window.runs) == 1
    assert [label.text for _item, label in window.rd_panel.legend.items] == ["second (β=2)"]
    assert errors == []


def test_settings_layout_and_recent_files_persist(make_window, finished_run):
    first = make_window()
    first.show()
    panel = first.training_panel
    panel.beta_spin.setValue(4.0)
    panel.latent_spin.setValue(7)
    panel.data_combo.setCurrentIndex(panel.data_combo.findData("shapes"))
    first.open_path(finished_run)
    first.kl_dock.hide()
    first.close()

    second = make_window()
    second.show()
    p2 = second.training_panel
    assert p2.beta_spin.value() == 4.0
    assert p2.latent_spin.value() == 7
    assert p2.data_combo.currentData() == "shapes"
    assert second.kl_dock.isHidden()
    assert second.recent_files()[0] == os.path.abspath(finished_run)
    second._fill_recent_menu()
    act = next(a for a in second.recent_menu.actions() if a.data() == os.path.abspath(finished_run))
    act.trigger()
    assert second.runs.current is not None and second.runs.current.path == os.path.abspath(finished_run)


def test_dropped_files_open(window, finished_run, qtbot, errors):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(finished_run)])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert len(window.runs) == 1 and window.runs.current.status == "finished"
    assert errors == []


def test_file_handlers_extend_open(window, tmp_path, errors):
    seen = []
    window.add_file_handler((".npz", ".NPY"), seen.append)
    path = str(tmp_path / "arrays.npz")
    open(path, "wb").close()
    assert window.open_path(path)
    assert seen == [path]
    assert errors == []


def test_the_reader_reads_new_rows_only(finished_run):
    """The watcher reads only the rows it has not seen (RunReader.steps/epochs(start=...))."""
    with RunReader(finished_run) as reader:
        steps, tail = reader.steps(), reader.steps(start=3)
        epochs, last = reader.epochs(), reader.epochs(start=reader.n_epochs - 1)
        assert reader.steps(start=reader.n_steps)["step"].shape == (0,)
    for name in steps:
        np.testing.assert_array_equal(tail[name], steps[name][3:])
    assert list(last["verdict"]) == list(epochs["verdict"][-1:])


def test_a_diagnosis_can_be_cancelled(window, finished_run, qtbot, errors):
    window.open_path(finished_run)
    session = window.runs.current
    panel = window.diagnosis_panel
    before = dict(session.diagnosis)
    with qtbot.waitSignal(window.controller.diagnoseBusyChanged, timeout=60_000,
                          check_params_cb=lambda busy: not busy):
        panel.button.click()
        assert panel.cancel_button.isVisibleTo(panel) and window.act_cancel_diagnosis.isEnabled()
        panel.cancel_button.click()
    assert session.diagnosis == before  # nothing new arrived
    assert "cancelled" in window.statusBar().currentMessage()
    assert panel.button.isEnabled() and not panel.cancel_button.isVisibleTo(panel)
    assert errors == []


def test_the_diagnosis_stops_between_batches(finished_run):
    """``models.diagnostics.diagnose`` reads its rows through CheckedRows: a cancel is seen at
    the next batch, and progress is reported per batch."""
    import torch

    from explorer.jobs.diagnose import CheckedRows
    from explorer.tasks import Cancelled, TaskState
    from models.diagnostics import diagnose

    class State(TaskState):
        def __init__(self):
            super().__init__()
            self.seen = []

        def set_progress(self, done, total=0):
            self.seen.append((done, total))
            self.request_interruption()  # the user cancels during the first batch

    with RunReader(finished_run) as reader:
        vae = reader.load_model("cpu")
    x = (np.random.default_rng(0).random((300, 1, 8, 8)) > 0.5).astype(np.float32)
    state = State()
    with torch.no_grad(), pytest.raises(Cancelled):
        diagnose(vae, CheckedRows(x, state), iw_samples=2, batch_size=128)
    assert state.seen == [(0, 300)]
    full = diagnose(vae, CheckedRows(x, None), iw_samples=2, batch_size=128)
    assert full.n_samples == 300
    assert full.elbo == pytest.approx(diagnose(vae, x, iw_samples=2, batch_size=128).elbo)


def test_an_export_can_be_cancelled_and_writes_nothing(window, finished_run, tmp_path, qtbot,
                                                       errors):
    from explorer.jobs import export as export_job

    assert window.open_path(finished_run)
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "decoder.onnx"
    assert window.controller.export_decoder(str(out))
    window._update_actions()
    assert window.act_cancel_export.isEnabled()
    qtbot.waitUntil(lambda: bool(export_job._CHILDREN), timeout=30_000)  # the child runs
    window.act_cancel_export.trigger()
    qtbot.waitUntil(lambda: not window.controller.export_busy, timeout=30_000)
    assert list(folder.iterdir()) == []  # no decoder, no temporary
    assert "cancelled" in window.statusBar().currentMessage()
    assert not export_job._CHILDREN and errors == []
    assert window.act_export.isEnabled() and not window.act_cancel_export.isEnabled()
