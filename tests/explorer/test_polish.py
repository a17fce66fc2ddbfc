"""Issue 15, the app as a user meets it: status messages seen, what the user opened kept, runs
switched back from the cache, errors said plainly, quit asked, speed smoothed, samples shown."""

from __future__ import annotations

import os
import shutil

import h5py
import numpy as np
import pytest

from explorer.state import RunSession, RunsModel, RunStatus


def _session(path: str, status: str = "finished", name: str = "run") -> RunSession:
    from models.io.runfile import RunReader

    with RunReader(path) as reader:
        config = reader.config
    session = RunSession(name, config, path, source="file")
    session.set_status(status)
    return session


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_h5) -> tuple[str, str]:
    """Two finished runs on the tiny data (copies of one: different files, same weights)."""
    import torch

    from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
    from models.io.run_callback import start_run

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("two")
    first = str(folder / "first.h5")
    cfg = RunConfig(
        model=ModelConfig(arch="mlp", data_shape=(1, 8, 8), latent_dim=3, hidden=(16,)),
        objective=ObjectiveConfig(beta=1.0),
        train=TrainConfig(data=f"{tiny_h5}:images", epochs=1, batch_size=20, log_every=2),
    )
    assert start_run(cfg, first, device="cpu").run().status == "finished"
    second = str(folder / "second.h5")
    shutil.copyfile(first, second)
    return first, second


# --------------------------------------------------------------------------- status bar
def test_a_status_message_is_visible_beside_a_long_run_file(window, finished_run, tmp_path, qtbot,
                                                            errors):
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8)
    deep.mkdir(parents=True)
    path = str(deep / "run-2026-12-01T13-29-37-beta-1.h5")
    shutil.copyfile(finished_run, path)
    window.resize(1280, 720)
    assert window.open_path(path)
    window.statusBar().showMessage("Exporting the decoder…")
    qtbot.wait(50)
    bar, label = window.statusBar(), window.run_file_label
    assert bar.currentMessage() == "Exporting the decoder…"
    assert label.full_text() == f"Run file: {path}" and label.toolTip() == label.full_text()
    assert label.text() != label.full_text() and "…" in label.text()  # elided, not widened
    # The message is drawn left of the permanent widgets: it has room to be read.
    room = label.geometry().left()
    assert room >= bar.fontMetrics().horizontalAdvance("Ready: press Start (F5) to train on MNIST")
    assert errors == []


# --------------------------------------------------------------------------- the explorer panel
def _panel(qtbot, runs, tmp_path):
    from explorer.latent.cache import RunCache
    from explorer.latent.panel import LatentExplorerPanel

    panel = LatentExplorerPanel(runs, cache=RunCache(str(tmp_path / "cache")))
    qtbot.addWidget(panel)
    panel.resize(1000, 600)
    panel.show()
    return panel


def _count_exports(monkeypatch) -> list[str]:
    import explorer.jobs.export as export_job

    calls: list[str] = []
    real = export_job.export_run_decoder

    def counted(run_path, *args, **kwargs):
        calls.append(run_path)
        return real(run_path, *args, **kwargs)

    monkeypatch.setattr(export_job, "export_run_decoder", counted)
    return calls


def test_an_opened_decoder_stays_until_the_user_picks_a_run(qtbot, tmp_path, two_runs, monkeypatch):
    from latent_helpers import export_vae_decoder

    first, second = two_runs
    runs = RunsModel()
    runs.add(_session(first, name="first"))
    panel = _panel(qtbot, runs, tmp_path)
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    onnx = export_vae_decoder(tmp_path / "shared.onnx", latent_dim=3)
    assert panel.open_decoder(onnx)
    explorer = panel.explorer
    # The current run's status changes and the dock is shown again: nothing replaces it.
    runs.current.set_status("stopped")
    panel.set_on_screen(False)
    panel.set_on_screen(True)
    assert not panel.busy and panel.explorer is explorer and panel.decoder_path == onnx
    assert "shared.onnx" in panel.source_label.text()
    # The user picks another run: that one is shown.
    with qtbot.waitSignal(panel.encodingsReady, timeout=60_000):
        runs.add(_session(second, name="second"))
    assert panel.explorer is not explorer and panel.run_path == os.path.abspath(second)
    panel.shutdown()


def test_switching_back_to_a_run_reads_the_cache_not_an_export(qtbot, tmp_path, two_runs,
                                                                monkeypatch):
    first, second = two_runs
    exports = _count_exports(monkeypatch)
    runs = RunsModel()
    a, b = _session(first, name="first"), _session(second, name="second")
    panel = _panel(qtbot, runs, tmp_path)
    with qtbot.waitSignal(panel.encodingsReady, timeout=60_000):
        runs.add(a)
    means = panel.space.latents.copy() if hasattr(panel.space, "latents") else None
    # Switching: the stale map is covered while the next run loads.
    runs.add(b)
    assert panel.busy and panel.overlay.isVisible() and "second.h5" in panel.overlay.text()
    qtbot.waitUntil(lambda: not panel.busy, timeout=60_000)
    assert not panel.overlay.isVisible()
    assert exports == [first, second]
    with qtbot.waitSignal(panel.encodingsReady, timeout=60_000):
        runs.set_current(a)
    assert exports == [first, second]  # back to the first run: from the cache
    assert "(from the cache)" in panel.source_label.text()
    if means is not None:
        np.testing.assert_array_equal(panel.space.latents, means)
    # A run written again is a new entry: exported again.
    os.utime(first, ns=(os.stat(first).st_atime_ns, os.stat(first).st_mtime_ns + 10**9))
    with qtbot.waitSignal(panel.encodingsReady, timeout=60_000):
        panel.load_button.click()
    assert exports == [first, second, first]
    panel.shutdown()


def test_the_cache_keeps_its_size_limit_dropping_the_oldest(tmp_path):
    from explorer.latent.cache import RunCache

    decoder = tmp_path / "d.onnx"
    decoder.write_bytes(b"\0" * 10_000)
    cache = RunCache(str(tmp_path / "cache"), limit_bytes=25_000)
    rows = np.arange(16, dtype=np.float32).reshape(4, 4) / 255
    for i, key in enumerate(("a", "b", "c")):
        cache.store(key, str(decoder), means=np.zeros((4, 2), np.float32),
                    logvar=np.zeros((4, 2), np.float32), indices=np.arange(4), samples=rows,
                    labels=None, label_names=["x", "y"], description=f"run {key}")
        os.utime(cache.entry(key), (1000 + i, 1000 + i))
    cache.evict()
    assert not cache.has("a") and cache.has("b") and cache.has("c")
    got = cache.load("c")
    assert got["description"] == "run c" and got["label_names"] == ["x", "y"]
    np.testing.assert_array_equal(got["samples"], rows)  # 8-bit rows come back exactly


# --------------------------------------------------------------------------- errors and files
def test_a_truncated_hdf5_file_is_said_plainly_with_details_behind(tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    import explorer.dialogs as dialogs
    from models.data import list_arrays
    from models.errors import DataError

    path = tmp_path / "cut.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((500, 8, 8), np.uint8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as info:
        list_arrays(str(path))
    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda box: shown.append(
        (box.text(), box.detailedText())))
    dialogs.show_error(None, str(info.value))
    (text, details), = shown
    assert text == f"{path}: truncated or damaged HDF5 file"
    assert "eof" in details and "eof" not in text  # HDF5's words only behind Show details


def test_the_labels_array_is_preselected(window, tiny_h5, errors):
    form = window.training_panel
    assert form.set_data_file(tiny_h5)
    assert form.array_combo.currentData().path == "images"
    assert form.labels_combo.currentData() == "labels"
    assert form.config().train.labels == "labels"
    assert form.set_data_file(tiny_h5, labels="")  # asked for none: none
    assert form.labels_combo.currentData() == ""
    assert errors == []


# --------------------------------------------------------------------------- quit during training
def test_quit_during_training_asks_and_can_keep_training(make_window, tiny_config, qtbot, monkeypatch,
                                                         errors):
    import explorer.dialogs as dialogs
    from models.config import RunConfig

    window = make_window()
    window.show()
    asked = []
    answer = [dialogs.QuitChoice.CANCEL]
    monkeypatch.setattr(dialogs, "ask_quit_while_training",
                        lambda parent, name: asked.append(name) or answer[0])
    cfg = RunConfig.from_dict({**tiny_config.to_dict(),
                               "train": {**tiny_config.train.to_dict(), "epochs": 6}})
    session = window.start_training(cfg)
    qtbot.waitUntil(lambda: len(session.steps) > 0, timeout=60_000)
    window.close()
    assert asked == [session.name] and window.isVisible() and window.controller.is_training
    answer[0] = dialogs.QuitChoice.KEEP_TRAINING
    window.close()
    assert window.isVisible() and window.controller.is_training  # it goes on
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=120_000)  # and quits at the end
    assert session.status is RunStatus.FINISHED
    assert errors == []


# --------------------------------------------------------------------------- speed and pause
def test_the_speed_is_smoothed_and_skips_the_interval_after_a_pause():
    from explorer.panels.speed import SpeedEstimate

    speed = SpeedEstimate(alpha=0.2)
    assert speed.update(np.array([1000.0])) == 1000.0
    v = speed.update(np.array([1000.0, 5000.0]))  # one fast interval moves it a fifth of the way
    assert v == pytest.approx(1800.0)
    speed.paused()
    assert speed.update(np.array([1000.0, 5000.0, 10.0])) == pytest.approx(1800.0)  # skipped
    assert speed.seconds_left(100, 18) == pytest.approx(1.0)


def test_the_training_panel_says_paused_and_no_stale_speed(tiny_config):
    from explorer.panels.training import TrainingPanel

    panel = TrainingPanel()
    s = RunSession("run", tiny_config, "", source="train")
    s.set_info(total_steps=100)
    s.set_status(RunStatus.RUNNING)
    for k, sps in enumerate([900.0, 1100.0]):
        s.append_step({"step": 2 * (k + 1), "epoch": 0, "samples_per_s": sps, "elbo": -1.0})
    panel.set_session(s)
    assert "samples/s" in panel.progress_text() and "left" in panel.progress_text()
    s.set_status(RunStatus.PAUSED)
    text = panel.progress_text()
    assert "paused" in text and "samples/s" not in text and "left" not in text
    s.set_status(RunStatus.INTERRUPTED, "the process that wrote it (pid 7) ended without closing it")
    assert panel.progress_text().splitlines()[1].startswith("the process that wrote it")


# --------------------------------------------------------------------------- samples
def test_the_samples_panel_shows_reconstructions_and_prior_samples(qtbot, two_runs):
    from explorer.panels.samples import SamplesPanel

    first, _second = two_runs
    runs = RunsModel()
    panel = SamplesPanel(runs)
    qtbot.addWidget(panel)
    panel.resize(900, 400)
    panel.show()
    session = _session(first)
    session.extend_epochs({"epoch": np.array([0])}, ["ok"])
    with qtbot.waitSignal(panel.recon_view.item.sigImageChanged, timeout=60_000):
        runs.add(session)
    shown = panel.shown
    assert shown.originals.shape == shown.reconstructions.shape == (8, 8, 8)
    assert shown.prior.shape == (16, 8, 8) and shown.weights_step > 0
    assert panel.recon_view.image.shape == (17, 8 * 9 - 1)  # data over reconstructions
    assert panel.prior_view.image.shape == (17, 8 * 9 - 1)
    assert f"step {shown.weights_step:,}" in panel.status.text()
    # The same validation images and prior draws every time: only the model changes them.
    first_images = shown
    session.extend_epochs({"epoch": np.array([1])}, ["ok"])  # a new epoch: refreshed
    qtbot.waitUntil(lambda: panel.shown is not first_images and not panel.busy, timeout=60_000)
    np.testing.assert_array_equal(panel.shown.originals, first_images.originals)
    np.testing.assert_array_equal(panel.shown.prior, first_images.prior)
    panel.shutdown()


def test_the_samples_of_a_run_on_dequantised_bytes_show_the_data_as_it_is(tmp_path, tiny_h5):
    # A Gaussian on 8-bit data is validated on (k + u) / 256: shown with (0, 1) as black and
    # white, those rows came out up to a level off the data (255 v rounded, not the bin of v).
    import torch

    from explorer.jobs.samples import sample_images
    from models.config import ModelConfig, RunConfig, TrainConfig
    from models.data import validation_rows
    from models.io.run_callback import start_run
    from models.io.runfile import RunReader

    torch.set_num_threads(1)
    path = str(tmp_path / "gauss.h5")
    cfg = RunConfig(
        model=ModelConfig(arch="mlp", data_shape=(1, 8, 8), latent_dim=2, hidden=(16,),
                          likelihood="gaussian"),
        train=TrainConfig(data=f"{tiny_h5}:images", epochs=1, batch_size=20, log_every=5),
    )
    assert start_run(cfg, path, device="cpu").run().status == "finished"
    shown = sample_images(path, n_reconstructions=8, n_prior=2)
    with RunReader(path) as reader:
        rows = validation_rows(reader, max_samples=8, seed=0)
    with h5py.File(tiny_h5, "r") as f:
        data = f["images"][np.sort(rows.indices)]
    order = np.argsort(np.argsort(rows.indices))
    np.testing.assert_array_equal(shown.originals, data[order])  # every pixel its own level
    assert shown.reconstructions.shape == (8, 8, 8) and shown.prior.shape == (2, 8, 8)


def test_a_hidden_samples_tab_waits_and_catches_up_when_shown(qtbot, two_runs):
    # Hidden behind the curves, the panel decoded each epoch anyway: work nobody saw, and the
    # first decode imports torch in the GUI's process (an event-loop stall of ~0.5 s mid-run).
    from explorer.panels.samples import SamplesPanel

    first, _second = two_runs
    runs = RunsModel()
    panel = SamplesPanel(runs)
    qtbot.addWidget(panel)
    panel.set_on_screen(False)
    session = _session(first)
    session.extend_epochs({"epoch": np.array([0])}, ["ok"])
    runs.add(session)
    session.extend_epochs({"epoch": np.array([1])}, ["ok"])
    assert not panel.busy and panel.shown is None
    with qtbot.waitSignal(panel.recon_view.item.sigImageChanged, timeout=60_000):
        panel.set_on_screen(True)  # the user picks the Samples tab: the latest weights
    assert panel.shown is not None and panel.shown.weights_step > 0
    panel.shutdown()


def test_the_samples_dock_is_off_screen_behind_the_curves(window, qtbot):
    window.show()
    qtbot.waitExposed(window)
    window.curves_dock.raise_()
    qtbot.wait(50)
    assert not window.samples_panel._on_screen
    window.samples_dock.raise_()
    qtbot.waitUntil(lambda: window.samples_panel._on_screen, timeout=5_000)


# --------------------------------------------------------------------------- run-file reads
def test_a_long_run_file_is_read_off_the_gui_thread(window, finished_run, qtbot, monkeypatch, errors):
    import threading

    import explorer.jobs.follow as follow
    import explorer.watcher as watcher
    from models.io.runfile import RunReader

    monkeypatch.setattr(watcher, "INLINE_ROWS", 0)  # every file counts as long
    on_gui_thread = []
    real = follow.read_rows

    def spy(*args, **kwargs):
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(follow, "read_rows", spy)
    monkeypatch.setattr(watcher, "read_rows", spy)
    assert window.open_path(finished_run)
    session = window.runs.current
    assert len(session.steps) == 0 and session.config is not None  # described at once
    qtbot.waitUntil(lambda: window.controller.watcher_for(session) is None, timeout=30_000)
    with RunReader(finished_run) as reader:
        assert len(session.steps) == reader.n_steps and len(session.epochs) == reader.n_epochs
    assert session.status is RunStatus.FINISHED
    assert on_gui_thread == [False]
    assert errors == []
