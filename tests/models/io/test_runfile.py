"""Run files: layout round trip, SWMR reading while written, SIGKILL, overwrite rules, bad files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from models.config import ModelConfig, RunConfig
from models.errors import RunFileError
from models.io.runfile import FORMAT_NAME, FORMAT_VERSION, RunReader, RunWriter
from models.training import EpochEvent, StepEvent
from models.nn.vae import VAE

from train_helpers import one_thread  # noqa: F401  (fixture)
from train_helpers import ROOT, LineReader, cli, write_tiny_h5

D = 3
pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed: int = 0) -> tuple[RunConfig, VAE]:
    cfg = RunConfig(model=ModelConfig(arch="mlp", data_shape=(16,), latent_dim=D, hidden=(8,)))
    torch.manual_seed(seed)
    return cfg, VAE(cfg.model)


def _step(i: int) -> StepEvent:
    kl = np.array([0.1, 0.2, 0.3]) * i
    return StepEvent(
        step=10 * i, epoch=1 + i // 3, elbo=-(50.0 + kl.sum()), distortion=50.0, rate=float(kl.sum()),
        kl_per_dim=kl, beta=min(1.0, i / 4), lr=1e-3, samples_per_s=1000.0 + i,
    )


def _epoch(i: int) -> EpochEvent:
    return EpochEvent(
        epoch=i, step=30 * i, train_elbo=-60.0 + i, train_distortion=55.0, train_rate=5.0 - i,
        val_elbo=-61.0 + i, val_distortion=56.0, val_rate=5.0 - i,
        val_kl_per_dim=np.array([1.0, 2.0, 3.0]) * i, activity_per_dim=np.array([0.5, 0.0, 0.2]),
        active_units=2, mutual_info=1.5, marginal_kl=3.5 - i, seconds=2.0,
        verdict=f"verdict of epoch {i}: ünïcode ok",
    )


def _writer(path, force=False, **kw) -> RunWriter:
    cfg, model = _model()
    return RunWriter(path, cfg, model, {"name": "toy", "n": 40}, np.arange(30, 40), force=force, **kw)


def test_round_trip_of_every_part(tmp_path):
    path = tmp_path / "run.h5"
    cfg, model = _model(seed=3)
    w = RunWriter(path, cfg, model, {"name": "toy", "n": 40}, np.arange(30, 40))
    for i in range(5):
        w.log_step(_step(i))
    w.log_epoch(_epoch(1))
    w.save_weights(model, step=30)
    w.set_status("finished", "finished 1 epochs (30 steps)")
    w.close()

    with RunReader(path) as r:
        assert r.config == cfg
        assert r.status == "finished" and r.message == "finished 1 epochs (30 steps)"
        assert r.dataset_info == {"name": "toy", "n": 40}
        np.testing.assert_array_equal(r.val_indices, np.arange(30, 40))
        assert r.weights_step == 30 and r.format_version == FORMAT_VERSION
        s = r.steps()
        assert set(s) >= {"step", "epoch", "elbo", "distortion", "rate", "beta", "lr",
                          "samples_per_s", "kl_per_dim", "time"}
        np.testing.assert_array_equal(s["step"], [0, 10, 20, 30, 40])
        np.testing.assert_allclose(s["kl_per_dim"], np.stack([_step(i).kl_per_dim for i in range(5)]))
        np.testing.assert_allclose(s["elbo"], [_step(i).elbo for i in range(5)])
        np.testing.assert_allclose(s["beta"], [0, 0.25, 0.5, 0.75, 1.0])
        e = r.epochs()
        assert e["epoch"].tolist() == [1] and e["active_units"].tolist() == [2]
        np.testing.assert_allclose(e["val_kl_per_dim"], [[1.0, 2.0, 3.0]])
        np.testing.assert_allclose(e["marginal_kl"], [2.5])
        assert e["verdict"][0] == "verdict of epoch 1: ünïcode ok"
        loaded = r.load_model()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, rtol=0, atol=0)


def test_layout_is_plain_hdf5_with_no_pickles(tmp_path):
    path = tmp_path / "run.h5"
    w = _writer(path)
    w.log_step(_step(1))
    w.log_epoch(_epoch(1))
    w.close()
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT_NAME and f.attrs["format_version"] == FORMAT_VERSION
        assert f["steps/kl_per_dim"].shape == (1, D) and f["steps/kl_per_dim"].maxshape == (None, D)
        assert f["steps/step"].maxshape == (None,)
        assert f["epochs/activity_per_dim"].shape == (1, D)
        assert f["weights/encoder.head.mu.weight"].dtype == np.float32
        assert f["status"].dtype.kind == "S"
        kinds = set()
        f.visititems(lambda name, obj: kinds.add(obj.dtype.kind) if isinstance(obj, h5py.Dataset) else None)
        assert kinds <= {"i", "f", "S", "O"}  # "O": the two JSON text datasets
        assert "\"model\"" in f["config"][()].decode()


def test_steps_reach_the_file_at_flushes_and_refresh_sees_growth(tmp_path):
    path = tmp_path / "run.h5"
    w = _writer(path, flush_seconds=3600.0)
    reader = RunReader(path)  # a second handle, open while the writer appends
    assert reader.status == "running" and reader.n_steps == 0 and reader.n_epochs == 0
    w.log_step(_step(0))
    w.log_step(_step(1))
    assert reader.refresh() is False  # buffered: not flushed yet
    w.log_epoch(_epoch(1))  # an epoch flushes the pending steps too
    assert reader.refresh() is True
    assert reader.n_steps == 2 and reader.n_epochs == 1
    assert reader.refresh() is False
    w.log_step(_step(2))
    w.flush()
    assert reader.refresh() is True and reader.steps()["step"].tolist() == [0, 10, 20]
    w.set_status("stopped", "stopped by the user")
    reader.refresh()
    assert reader.status == "stopped" and reader.message == "stopped by the user"
    w.close()
    reader.close()


def test_steps_flush_on_their_own_after_flush_seconds(tmp_path):
    path = tmp_path / "run.h5"
    w = _writer(path, flush_seconds=0.0)
    reader = RunReader(path)
    w.log_step(_step(0))
    assert reader.refresh() is True and reader.n_steps == 1
    w.close()
    reader.close()


_READER_PROCESS = """
import sys
sys.path.insert(0, {root!r})
from models.io.runfile import RunReader
r = RunReader({path!r})
print(r.n_steps, r.n_epochs, r.status, flush=True)
for line in sys.stdin:
    grew = r.refresh()
    print(r.n_steps, r.n_epochs, r.status, grew, flush=True)
"""


def test_another_process_reads_while_the_writer_appends(tmp_path):
    path = tmp_path / "run.h5"
    w = _writer(path)
    w.log_epoch(_epoch(1))
    code = _READER_PROCESS.format(root=ROOT, path=str(path))
    with subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().split() == ["0", "1", "running"]
            for i in range(3):
                w.log_step(_step(i))
            w.log_epoch(_epoch(2))
            proc.stdin.write("refresh\n")
            proc.stdin.flush()
            assert proc.stdout.readline().split() == ["3", "2", "running", "True"]
            w.set_status("finished", "done")
            proc.stdin.write("refresh\n")
            proc.stdin.flush()
            assert proc.stdout.readline().split() == ["3", "2", "finished", "False"]
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)
            w.close()
        assert proc.returncode == 0, proc.stderr.read()


_OPENS = """
import sys
sys.path.insert(0, {root!r})
from models.io.runfile import RunReader
with RunReader(sys.argv[1]) as r:
    print(r.status)
"""


@pytest.mark.parametrize("force", [False, True])
def test_a_run_file_can_be_read_from_the_moment_it_has_its_name(tmp_path, monkeypatch, force):
    # A watcher that opened the file as soon as it appeared met HDF5's lock: the writer moved it
    # into place, then reopened it there and only then turned SWMR on ("unable to lock file").
    # Another process tries to read the run's path right after each move and each reopening.
    path = tmp_path / "run.h5"
    seen = []

    def read_now() -> None:
        if path.exists():
            proc = subprocess.run([sys.executable, "-c", _OPENS.format(root=ROOT), str(path)],
                                  capture_output=True, text=True, timeout=120)
            seen.append((proc.returncode, proc.stdout.strip(), proc.stderr.strip()[-300:]))

    def then_read(real):
        def call(*args, **kwargs):
            out = real(*args, **kwargs)
            read_now()
            return out
        return call

    monkeypatch.setattr(os, "link", then_read(os.link))
    monkeypatch.setattr(os, "replace", then_read(os.replace))
    monkeypatch.setattr(h5py, "File", then_read(h5py.File))
    w = _writer(path, force=force)
    w.close()
    assert seen and all(s == (0, "running", "") for s in seen), seen


def test_a_file_locked_by_another_writer_is_named_as_such(tmp_path):
    path = tmp_path / "held.h5"
    hold = "import h5py, sys; f = h5py.File(sys.argv[1], 'w'); print('open', flush=True); sys.stdin.read()"
    with subprocess.Popen([sys.executable, "-c", hold, str(path)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().strip() == "open"
            with pytest.raises(RunFileError, match="another program has it open for writing") as info:
                RunReader(path)
            assert "\n" not in str(info.value) and "damaged" not in str(info.value)
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)


def test_a_run_killed_with_sigkill_leaves_a_readable_file(tmp_path):
    spec = write_tiny_h5(str(tmp_path / "tiny.h5"))
    out = tmp_path / "killed.h5"
    with cli("train", "--data", spec, "--latent-dim", "2", "--hidden", "16", "--epochs", "100000",
             "--batch-size", "16", "--out", str(out), "--device", "cpu") as proc:
        lines = LineReader(proc)
        try:
            lines.wait_for("epoch ", count=2)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            lines.rest()
    assert proc.returncode == -signal.SIGKILL
    with RunReader(out) as r:
        assert r.status == "running"  # it never got to say otherwise
        assert r.n_epochs >= 2
        e = r.epochs()
        assert e["epoch"][:2].tolist() == [1, 2] and np.all(np.isfinite(e["val_elbo"]))
        assert r.n_steps >= 1 and np.all(np.isfinite(r.steps()["elbo"]))
        assert r.weights_step >= e["step"][1]
        model = r.load_model()
        assert model.latent_dim == 2
        assert all(torch.isfinite(p).all() for p in model.parameters())
        assert r.updated >= r.created


def test_existing_file_is_kept_without_force_and_replaced_with_it(tmp_path):
    path = tmp_path / "run.h5"
    w = _writer(path)
    w.log_epoch(_epoch(1))
    w.set_status("finished")
    w.close()
    before = path.read_bytes()
    with pytest.raises(RunFileError, match="file exists") as info:
        _writer(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert path.read_bytes() == before
    w = _writer(path, force=True)
    w.close()
    with RunReader(path) as r:
        assert r.n_epochs == 0 and r.status == "running"
    assert [p.name for p in tmp_path.iterdir()] == ["run.h5"]  # no temporary left behind


def test_writer_refuses_a_missing_folder_and_non_finite_weights(tmp_path):
    with pytest.raises(RunFileError, match="does not exist"):
        _writer(tmp_path / "nowhere" / "run.h5")
    path = tmp_path / "run.h5"
    w = _writer(path)
    cfg, model = _model()
    w.save_weights(model, step=3)
    good = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # every parameter changed, the last one (in state_dict order) NaN
        for p in model.parameters():
            p.add_(1.0)
        model.decoder.net[-1].bias[0] = float("nan")
    with pytest.raises(RunFileError, match=r"non-finite weights \(decoder\.net\.2\.bias\)"):
        w.save_weights(model, step=6)
    w.close()
    with RunReader(path) as r:  # nothing of the refused set was written
        assert r.weights_step == 3
        for name, arr in r.weights().items():
            np.testing.assert_array_equal(arr, good[name].numpy())


class _Crash(Exception):
    """Stands for the writer's process dying."""


def _die_while_writing(w: RunWriter, group: str, monkeypatch) -> None:
    """Make ``w`` die after writing half of the arrays of ``group`` during its next save."""
    write = RunWriter._write_weights

    def dying(self, name, state):
        if name != group:
            return write(self, name, state)
        items = list(state.items())
        write(self, name, dict(items[: len(items) // 2]))
        raise _Crash

    monkeypatch.setattr(RunWriter, "_write_weights", dying)


@pytest.mark.parametrize(("dies_in", "kept_step"), [("staged_weights", 10), ("weights", 20)])
def test_a_writer_dying_while_saving_weights_leaves_one_whole_set(tmp_path, monkeypatch, dies_in, kept_step):
    """The weights of step 10 are saved, then those of step 20 are being saved when the writer
    dies, half-way through its staging copy or half-way through ``weights``. Closing the HDF5
    file then (rather than a kill) puts even the half-written arrays in the file; the reader
    still gets one whole set: step 10's, or step 20's from the staging copy."""
    path = tmp_path / "run.h5"
    cfg, model = _model(seed=1)
    w = RunWriter(path, cfg, model, {"name": "toy", "n": 40}, np.arange(30, 40))
    w.save_weights(model, step=10)
    sets = {10: {k: v.numpy().copy() for k, v in model.state_dict().items()}}
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-2.0).add_(0.5)
    sets[20] = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    _die_while_writing(w, dies_in, monkeypatch)
    with pytest.raises(_Crash):
        w.save_weights(model, step=20)
    w._file.close()  # the process is gone: no status, no clean close
    w._file = None
    with RunReader(path) as r:
        assert r.weights_step == kept_step
        got = r.weights()
        assert set(got) == set(sets[kept_step])
        for name, arr in got.items():
            np.testing.assert_array_equal(arr, sets[kept_step][name])
        loaded = r.load_model().state_dict()
        np.testing.assert_array_equal(loaded["decoder.net.2.bias"].numpy(), sets[kept_step]["decoder.net.2.bias"])
    with h5py.File(path, "r") as f:  # the failure really was half-way: the group is torn
        torn = f[dies_in]
        halves = [np.array_equal(torn[k][()], sets[20][k]) for k in sets[20]]
        assert any(halves) and not all(halves)


def test_a_run_file_from_before_the_staging_copy_reads_its_weights(tmp_path):
    path = tmp_path / "run.h5"
    _finished_run(path)
    with h5py.File(path, "r+") as f:
        for name in ("staged_weights", "staged_weights_step", "weights_staged"):
            del f[name]
    with RunReader(path) as r:
        assert r.weights_step == 3 and r.load_model() is not None


def test_a_reader_reads_the_weights_again_if_a_save_began_meanwhile(tmp_path, monkeypatch):
    """The mark changes while ``weights`` is read (the writer started copying a new set over it):
    the reader reads again, from the staging copy the mark now names."""
    path = tmp_path / "run.h5"
    _finished_run(path)
    with h5py.File(path, "r+") as f:
        for ds in f["staged_weights"].values():
            ds[...] = 7.0
    with RunReader(path) as r:
        answers = iter([("weights", 3), ("staged_weights", 9), ("staged_weights", 9), ("staged_weights", 9)])
        monkeypatch.setattr(r, "_weights_source", lambda: next(answers))
        got = r.weights()
        assert r.weights_step == 9 and all(np.all(arr == 7.0) for arr in got.values())


def _one_line_error(path) -> str:
    with pytest.raises(RunFileError) as info:
        RunReader(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text
    return text


def test_reader_errors_name_the_file_in_one_line(tmp_path):
    text_file = tmp_path / "notes.h5"
    text_file.write_text("not hdf5 at all\n")
    assert "not an HDF5 file" in _one_line_error(text_file)

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    assert "not a Latent Explorer run file" in _one_line_error(other)

    newer = tmp_path / "newer.h5"
    _finished_run(newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = 99
    assert "version 99" in _one_line_error(newer)

    whole = tmp_path / "whole.h5"
    _finished_run(whole)
    truncated = tmp_path / "truncated.h5"
    data = whole.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    assert "truncated" in _one_line_error(truncated)

    assert "no such file" in _one_line_error(tmp_path / "missing.h5")


def test_load_model_needs_weights(tmp_path):
    path = tmp_path / "run.h5"
    w = _writer(path)
    with RunReader(path) as r:
        with pytest.raises(RunFileError, match="no weights"):
            r.load_model()
    w.close()


def test_the_reader_sees_the_writer_close_time(tmp_path):
    path = tmp_path / "run.h5"
    w = _writer(path)
    t0 = time.time()
    w.close()
    with RunReader(path) as r:
        assert r.updated >= t0 - 1.0 and os.path.getsize(path) > 0


def _finished_run(path) -> None:
    cfg, model = _model()
    with RunWriter(path, cfg, model, {"name": "toy", "n": 40}, np.arange(30, 40)) as w:
        w.save_weights(model, step=3)
        w.set_status("finished", "done")


def test_a_run_file_without_its_weights_group_is_one_run_file_error(tmp_path):
    path = tmp_path / "run.h5"
    _finished_run(path)
    with h5py.File(path, "r+") as f:
        del f["weights"]
    with RunReader(path) as r:
        with pytest.raises(RunFileError, match="damaged or truncated run file") as caught:
            r.load_model()
        assert "\n" not in str(caught.value)
        with pytest.raises(RunFileError, match="damaged or truncated run file"):
            r.weights()


@pytest.mark.parametrize("text", [b"[1, 2]", b'"toy"', b"3"])
def test_a_data_set_description_that_is_not_a_json_object_is_refused(tmp_path, text):
    path = tmp_path / "run.h5"
    _finished_run(path)
    with h5py.File(path, "r+") as f:
        del f["dataset"]
        f["dataset"] = np.bytes_(text)
    with pytest.raises(RunFileError, match="not a JSON object"):
        RunReader(path)
