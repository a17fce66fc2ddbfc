"""Encoding in the background and loading a trained run into the explorer."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6.QtCore import QObject, Slot

from explorer.latent.encoding import (
    Cancelled,
    DecoderReady,
    encode_rows,
    encode_task,
    load_run_for_exploring,
    load_run_task,
)
from explorer.tasks import Task, TaskStatus


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory, tiny_h5):
    """A finished run (2 epochs on the tiny 8 x 8 images) whose data set has labels."""
    import torch

    from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
    from models.io.run_callback import start_run

    torch.set_num_threads(1)
    path = str(tmp_path_factory.mktemp("runs") / "labelled.h5")
    cfg = RunConfig(
        model=ModelConfig(arch="mlp", data_shape=(1, 8, 8), latent_dim=3, hidden=(16,)),
        objective=ObjectiveConfig(beta=1.0),
        train=TrainConfig(data=f"{tiny_h5}:images", labels="labels", epochs=2, batch_size=20,
                          lr=3e-3, log_every=2),
    )
    assert start_run(cfg, path, device="cpu").run().status == "finished"
    return path


@pytest.fixture(scope="module")
def small_vae():
    import torch

    from models.config import ModelConfig
    from models.nn.vae import VAE

    torch.manual_seed(0)
    return VAE(ModelConfig(data_shape=(1, 8, 8), latent_dim=3, hidden=(16,))).eval()


class Collector(QObject):
    """Receives a task's signals on the GUI thread, as the panel does."""

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.events: list = []
        self.task = task
        task.partial.connect(self.on_partial)
        task.progress.connect(self.on_progress)
        task.result.connect(self.on_result)
        task.error.connect(self.on_error)
        task.cancelled.connect(self.on_cancelled)
        task.finished.connect(self.on_finished)

    @Slot(object)
    def on_partial(self, value):
        self.events.append(("decoder", value.path) if isinstance(value, DecoderReady) else ("partial", value))

    @Slot(int, int)
    def on_progress(self, done, total):
        self.events.append(("progress", done, total))

    @Slot(object)
    def on_result(self, result):
        self.events.append(("encoded", result))

    @Slot(str)
    def on_error(self, message):
        self.events.append(("failed", message))

    @Slot()
    def on_cancelled(self):
        self.events.append(("cancelled",))

    @Slot(object)
    def on_finished(self, status):
        self.events.append(("finished", status))

    def run(self, qtbot):
        self.task.start()
        qtbot.waitUntil(lambda: self.task.status.done, timeout=60_000)
        assert self.events[-1] == ("finished", self.task.status)
        return self.events[:-1]


def torch_encode(vae, x):
    import torch

    with torch.no_grad():
        mu, lv = vae.encode(torch.from_numpy(x))
    return mu.numpy(), lv.numpy()


def test_encode_rows_through_an_onnx_encoder_matches_torch(tmp_path, small_vae):
    from models.io.onnx_export import export_encoder
    from models.io.onnx_runtime import OnnxEncoder

    path = tmp_path / "enc.onnx"
    export_encoder(small_vae, path, {})
    x = np.random.default_rng(0).random((250, 1, 8, 8)).astype(np.float32)
    seen = []
    mu, lv = encode_rows(OnnxEncoder(path), x, batch_size=64, progress=lambda d, n: seen.append((d, n)))
    want_mu, want_lv = torch_encode(small_vae, x)
    np.testing.assert_allclose(mu, want_mu, atol=1e-4)
    np.testing.assert_allclose(lv, want_lv, atol=1e-4)
    assert seen == [(64, 250), (128, 250), (192, 250), (250, 250)]


def test_encode_rows_stops_between_batches(small_vae):
    from explorer.latent.encoding import TorchEncoder

    x = np.zeros((300, 1, 8, 8), np.float32)
    seen = []
    with pytest.raises(Cancelled):
        encode_rows(TorchEncoder(small_vae), x, 100, lambda d, n: seen.append(d), lambda: len(seen) >= 1)
    assert seen == [100]


def _no_in_process_export(*_args, **_kwargs):
    raise AssertionError("the decoder was exported in the app's own process")


def test_load_run_exports_the_decoder_and_encodes_the_validation_rows(
    tmp_path, monkeypatch, labelled_run, tiny_h5
):
    import h5py

    from models.io.runfile import RunReader
    from models.io.onnx_runtime import OnnxDecoder

    dec_path = str(tmp_path / "dec.onnx")
    written = []
    # The export runs in a child process, never here: tracing beside a training thread of the
    # app deadlocked torch. An in-process export would hit this.
    monkeypatch.setattr("models.io.onnx_export.export_decoder", _no_in_process_export)
    enc = load_run_for_exploring(labelled_run, dec_path, on_decoder=written.append)
    assert written == [dec_path] and os.path.exists(dec_path)
    with RunReader(labelled_run) as reader:
        vae = reader.load_model("cpu")
        val = reader.val_indices
        kl = reader.epochs()["val_kl_per_dim"][-1]
    dec = OnnxDecoder(dec_path)
    np.testing.assert_allclose(dec.metadata["kl_per_dim"], kl, rtol=1e-6)
    np.testing.assert_array_equal(enc.indices, val)
    with h5py.File(tiny_h5, "r") as f:
        np.testing.assert_array_equal(enc.labels, f["labels"][()][val])
    # Posterior means of the rows as validated (binarised), never samples.
    want_mu, want_lv = torch_encode(vae, enc.samples)
    np.testing.assert_allclose(enc.means, want_mu, atol=1e-5)
    np.testing.assert_allclose(enc.logvar, want_lv, atol=1e-5)
    assert set(np.unique(enc.samples)) <= {0.0, 1.0}
    assert "validation rows" in enc.description

    everything = load_run_for_exploring(labelled_run, dec_path, which="all")
    assert len(everything.means) == 200


def test_run_load_worker_reports_progress_and_results(qtbot, tmp_path, labelled_run):
    task = Task("test-load", load_run_task, labelled_run, str(tmp_path / "dec.onnx"))
    events = Collector(task).run(qtbot)
    assert task.status is TaskStatus.FINISHED
    kinds = [e[0] for e in events]
    assert kinds[0] == "decoder" and events[0][1].endswith("dec.onnx")
    assert kinds[-1] == "encoded" and set(kinds[1:-1]) == {"progress"}
    n = len(events[-1][1].means)
    assert events[-2][1:] == (n, n)


def test_run_load_worker_reports_a_bad_run_in_one_line(qtbot, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    task = Task("test-bad", load_run_task, str(bad), str(tmp_path / "dec.onnx"))
    events = Collector(task).run(qtbot)
    assert task.status is TaskStatus.FAILED
    assert len(events) == 1 and events[0][0] == "failed"
    assert str(bad) in events[0][1] and "\n" not in events[0][1]


def test_an_encoding_task_can_be_cancelled(qtbot, small_vae):
    from explorer.latent.encoding import TorchEncoder

    class Slow(TorchEncoder):
        def encode(self, x):
            task.cancel()  # the user presses Cancel during the first batch
            return super().encode(x)

    task = Task("test-cancel", encode_task, Slow(small_vae), np.zeros((500, 1, 8, 8), np.float32), 100)
    events = Collector(task).run(qtbot)
    assert events == [("progress", 100, 500), ("cancelled",)]
    assert task.status is TaskStatus.CANCELLED


# --------------------------------------------------------------------------- the panel
def make_session(path, status):
    from explorer.state import RunSession, RunsModel
    from models.io.runfile import RunReader

    runs = RunsModel()
    with RunReader(path) as reader:
        config = reader.config
    session = RunSession("run", config, path, source="file")
    session.set_status(status)
    return runs, session


def test_panel_loads_the_current_finished_run(qtbot, labelled_run):
    from explorer.latent.panel import LatentExplorerPanel

    runs, session = make_session(labelled_run, "finished")
    panel = LatentExplorerPanel(runs)
    qtbot.addWidget(panel)
    panel.resize(1200, 700)
    panel.show()
    with qtbot.waitSignal(panel.encodingsReady, timeout=60_000):
        runs.add(session)
    space = panel.space
    assert space.has_encodings and space.labels is not None and space.latent_dim == 3
    assert "validation rows" in panel.source_label.text()
    # Clicking a point shows its (binarised) data row beside its reconstruction.
    panel.explorer.sample_view.show_point(0)
    img = panel.explorer.sample_view.image
    assert img.shape == (8, 17)
    data = img[:, :8]
    np.testing.assert_array_equal(data, (space.sample(0).reshape(8, 8) * 255 + 0.5).astype(np.uint8))
    recon = space.decoder.decode(space.latents[:1])[0, 0]
    np.testing.assert_array_equal(img[:, 9:], (recon * 255 + 0.5).astype(np.uint8))
    # The same weights are not exported twice; "Load from run" forces it.
    assert not panel.load_run(labelled_run, user=False)
    with qtbot.waitSignal(panel.encodingsReady, timeout=60_000):
        panel.load_button.click()
    panel.shutdown()


def test_panel_waits_for_a_live_run_to_finish_and_can_cancel(qtbot, labelled_run):
    from explorer.latent.panel import LatentExplorerPanel

    runs, session = make_session(labelled_run, "running")
    panel = LatentExplorerPanel(runs)
    qtbot.addWidget(panel)
    panel.show()
    runs.add(session)
    assert not panel.busy and panel.explorer is None  # training: nothing exported yet
    session.set_status("finished")
    assert panel.busy
    panel.cancel()
    assert not panel.busy
    qtbot.wait(3000)  # the cancelled worker's late signals are ignored
    assert panel.space is None or not panel.space.has_encodings
    panel.shutdown()


def test_shutdown_waits_for_a_busy_worker_without_blocking_it(qtbot, tmp_path, labelled_run):
    """The GUI thread blocked in shutdown() still lets the worker finish (its thread quits from
    the worker's side), so closing the window mid-load neither hangs nor aborts."""
    import time

    from explorer.latent.panel import LatentExplorerPanel

    panel = LatentExplorerPanel()
    qtbot.addWidget(panel)
    assert panel.load_run(labelled_run)
    task = panel._task
    t0 = time.perf_counter()
    panel.shutdown(timeout_ms=60_000)
    assert task.status.done
    assert time.perf_counter() - t0 < 60
