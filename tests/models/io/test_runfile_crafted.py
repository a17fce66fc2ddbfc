"""Crafted and damaged run files: one RunFileError line, never a traceback or a huge allocation.

Each file is a small run written by RunWriter and then edited with plain h5py: a configuration of
the wrong types or of an enormous model, an impossible format version, negative validation
indices, soft links, a flipped byte in a checksummed chunk, NaN weights; and an old file without
checksums, which must stay readable.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from models.cli.main import main
from models.config import ModelConfig, RunConfig
from models.errors import RunFileError
from models.io.run_reader import MAX_PARAMETERS, expected_weights
from models.io.runfile import RunReader, RunWriter
from models.nn.vae import VAE
from models.training.events import EpochEvent, RunStatus, StepEvent

from train_helpers import one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run(tmp_path):
    cfg = RunConfig(model=ModelConfig(arch="mlp", data_shape=(16,), latent_dim=2, hidden=(8,)))
    torch.manual_seed(0)
    model = VAE(cfg.model)
    path = tmp_path / "run.h5"
    kl = np.array([0.1, 0.2])
    with RunWriter(path, cfg, model, {"name": "toy", "n": 40}, np.arange(30, 40)) as w:
        for i in range(3):
            w.log_step(StepEvent(step=i, epoch=1, elbo=-5.0, distortion=4.0, rate=1.0, kl_per_dim=kl,
                                 beta=1.0, lr=1e-3, samples_per_s=10.0))
        w.log_epoch(EpochEvent(epoch=1, step=3, train_elbo=-5.0, train_distortion=4.0, train_rate=1.0,
                               val_elbo=-5.5, val_distortion=4.5, val_rate=1.0, val_kl_per_dim=kl,
                               activity_per_dim=kl, active_units=1, mutual_info=0.5, marginal_kl=0.5,
                               seconds=1.0, verdict="fine"))
        w.save_weights(model, step=7)
        w.set_status(RunStatus.FINISHED)
    return path


def _edit_config(path, edit) -> None:
    with h5py.File(path, "r+") as f:
        d = json.loads(f["config"][()])
        edit(d)
        del f["config"]
        f.create_dataset("config", data=json.dumps(d), dtype=h5py.string_dtype())


def _one_line(exc: pytest.ExceptionInfo, path, *words: str) -> str:
    text = str(exc.value)
    assert "\n" not in text and str(path) in text, text
    for word in words:
        assert word in text, text
    return text


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(model=None), ["'model' must be an object, not null"]),
    (lambda d: d["model"].update(latent_dim=4.5), ["latent_dim must be a whole number", "4.5"]),
    (lambda d: d["model"].update(hidden="8"), ["hidden must be a list"]),
    (lambda d: d["model"].update(hidden=[8, -3]), ["hidden must be a list"]),
    (lambda d: d["model"].update(data_shape=[16] * 100), ["data_shape must be a list of at most 64"]),
    (lambda d: d["train"].update(epochs=True), ["epochs must be a whole number"]),
    (lambda d: d["objective"].update(beta="1"), ["beta must be a finite number"]),
    (lambda d: d["model"].update(obs_std=float("inf")), ["obs_std must be a finite number or null"]),
])
def test_a_configuration_of_the_wrong_types_is_one_line(run, edit, words) -> None:
    _edit_config(run, edit)
    with pytest.raises(RunFileError) as exc:
        RunReader(run)
    _one_line(exc, run, "configuration is invalid", *words)


@pytest.mark.parametrize("hidden", [[200_000_000], [400_000]])
def test_an_enormous_or_mismatched_model_is_refused_before_anything_is_allocated(run, hidden, monkeypatch) -> None:
    _edit_config(run, lambda d: d["model"].update(hidden=hidden))

    def no_real_model(*args, **kwargs):  # only the meta-device build may happen
        assert torch.empty(0).device.type == "meta", "a real model was built"
        return real_vae(*args, **kwargs)

    import models.io.run_reader as run_reader
    real_vae = run_reader.VAE
    monkeypatch.setattr(run_reader, "VAE", no_real_model)
    with RunReader(run) as r:
        with pytest.raises(RunFileError) as exc:
            r.load_model()
        with pytest.raises(RunFileError):
            r.weights()
    words = ["parameters", f"{MAX_PARAMETERS:,}"] if hidden[0] > 1e6 else ["stored weight", "needs float"]
    _one_line(exc, run, *words)


def test_expected_weights_match_a_real_model_without_allocating() -> None:
    for cfg in (ModelConfig(arch="mlp", data_shape=(16,), latent_dim=2, hidden=(8, 4), likelihood="gaussian"),
                ModelConfig(arch="conv", data_shape=(1, 28, 28), latent_dim=3, hidden=(4, 4, 8))):
        real = {k: tuple(v.shape) for k, v in VAE(cfg).state_dict().items()}
        assert expected_weights(cfg) == real
    huge = ModelConfig(arch="mlp", data_shape=(784,), latent_dim=2, hidden=(2**40,))
    with pytest.raises(Exception, match="parameters"):
        expected_weights(huge)


def test_weights_of_the_wrong_dtype_or_kind_are_refused(run) -> None:
    with h5py.File(run, "r+") as f:
        name = next(iter(f["weights"]))
        shape = f["weights"][name].shape
        del f["weights"][name]
        f["weights"].create_dataset(name, data=np.zeros(shape, dtype="S4"))
    with RunReader(run) as r, pytest.raises(RunFileError) as exc:
        r.load_model()
    _one_line(exc, run, name)


@pytest.mark.parametrize("version", [float("inf"), float("nan"), 1.5, "1", -(2**40), 2**62])
def test_an_impossible_format_version_is_one_line(run, version) -> None:
    with h5py.File(run, "r+") as f:
        f.attrs["format_version"] = version
    with pytest.raises(RunFileError) as exc:
        RunReader(run)
    _one_line(exc, run, "format version", "not supported")


@pytest.mark.parametrize("indices", [np.array([3, -1, 5]), np.zeros((2, 2), dtype=np.int64), np.array([0.5])])
def test_validation_indices_that_are_not_row_numbers_are_one_line(run, indices) -> None:
    with h5py.File(run, "r+") as f:
        del f["val_indices"]
        f["val_indices"] = indices
    with pytest.raises(RunFileError) as exc:
        RunReader(run)
    _one_line(exc, run, "validation indices")


@pytest.mark.parametrize("group", ["steps", "weights", "staged_weights", "epochs"])
def test_soft_links_anywhere_in_a_run_file_are_refused_by_the_reader(run, group) -> None:
    with h5py.File(run, "r+") as f:
        name = next(iter(f[group]))
        del f[group][name]
        f[group][name] = h5py.SoftLink(f"/{group}/missing")
    with pytest.raises(RunFileError) as exc:
        RunReader(run)
    _one_line(exc, run, "soft link", f"/{group}/{name}")


def _flip_in_chunk(path, dataset: str) -> None:
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    data[info.byte_offset + info.size // 2] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("dataset", ["weights/decoder.net.0.weight", "staged_weights/encoder.body.0.bias"])
def test_a_flipped_weight_byte_is_reported_as_damage(run, dataset) -> None:
    if dataset.startswith("staged"):  # the staged copy is the one read while its mark is set
        with h5py.File(run, "r+") as f:
            f["weights_staged"][()] = 1
    _flip_in_chunk(run, dataset)
    with RunReader(run) as r, pytest.raises(RunFileError) as exc:
        r.load_model()
    _one_line(exc, run, "damaged run file (checksum mismatch in /" + dataset)


@pytest.mark.parametrize("dataset, read", [
    ("steps/elbo", lambda r: r.steps()),
    ("steps/kl_per_dim", lambda r: r.steps()),
    ("epochs/val_elbo", lambda r: r.epochs()),
    ("epochs/activity_per_dim", lambda r: r.epochs()),
    ("epochs/verdict", lambda r: r.epochs()),
    ("val_indices", None),
])
def test_a_flipped_byte_in_a_logged_table_or_the_indices_is_reported_as_damage(run, dataset, read) -> None:
    _flip_in_chunk(run, dataset)
    with pytest.raises(RunFileError) as exc:
        with RunReader(run) as r:
            read(r)
    _one_line(exc, run, f"damaged run file (checksum mismatch in /{dataset})")


def test_an_old_file_without_checksums_stays_readable(run) -> None:
    with RunReader(run) as r:
        before_w, before_s = r.weights(), r.steps()
    with h5py.File(run, "r+") as f:  # rewrite every checksummed dataset plainly, as version 1 did
        names: list[str] = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) and o.fletcher32 else None)
        assert names
        for n in names:
            ds = f[n]
            data, maxshape = ds[()], ds.maxshape
            del f[n]
            f.create_dataset(n, data=data, maxshape=maxshape, chunks=True if maxshape != data.shape else None)
        assert not any(f[n].fletcher32 for n in names)
    with RunReader(run) as r:
        after_w = r.weights()
        assert r.load_model() is not None
        assert r.steps().keys() == before_s.keys()
    assert all(np.array_equal(before_w[k], after_w[k]) for k in before_w)


def test_a_recovered_status_is_read_as_interrupted(run) -> None:
    with h5py.File(run, "r+") as f:
        f["status"][()] = np.bytes_(RunStatus.INTERRUPTED.value)
    with RunReader(run) as r:
        assert r.status is RunStatus.INTERRUPTED
        assert r.effective_status() is RunStatus.INTERRUPTED


def test_export_refuses_non_finite_weights_and_writes_nothing(run, tmp_path, capsys) -> None:
    with h5py.File(run, "r+") as f:
        ds = f["weights"]["decoder.net.2.weight"]
        values = ds[()]
        values[0, 0] = np.nan
        ds[...] = values
    out = tmp_path / "d.onnx"
    assert main(["export", str(run), "--decoder", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "decoder.net.2.weight is not finite" in err, err
    assert not out.exists() and not list(tmp_path.glob("*.onnx*"))
