"""ONNX export: graph signature, metadata, verification against torch, atomic writes, failures."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from models.io import onnx_export
from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
from models.errors import ExportError
from models.io.onnx_export import OPSET, export_decoder, export_encoder
from models.io.onnx_metadata import metadata_from_run, shareable_dataset_name
from models.io.onnx_runtime import META_PREFIX, OnnxDecoder, OnnxEncoder
from models.nn.vae import VAE

RUN_META = {
    "dataset": "mnist",
    "scaling": "uint8/255",
    "elbo": -101.25,
    "rate": 24.5,
    "distortion": 76.75,
    "kl_per_dim": [3.0, 0.001, 5.5, 16.0],
    "collapsed_dims": [1],
}


def _trained_like(cfg: ModelConfig, seed: int = 0) -> VAE:
    """A VAE with random but non-trivial weights (biases too), so mismatches would show."""
    torch.manual_seed(seed)
    vae = VAE(cfg)
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return vae


@pytest.fixture(scope="module")
def mlp() -> VAE:
    return _trained_like(ModelConfig(latent_dim=4, hidden=(64, 32)))


@pytest.fixture(scope="module")
def exported(mlp: VAE, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("export")
    dec, enc = str(folder / "dec.onnx"), str(folder / "enc.onnx")
    export_decoder(mlp, dec, RUN_META)
    export_encoder(mlp, enc, RUN_META)
    return dec, enc


def _props(path: str) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(path).metadata_props}


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_decoder_graph_has_named_dynamic_batch_and_current_opset(exported: tuple[str, str]) -> None:
    model = onnx.load(exported[0])
    onnx.checker.check_model(model)
    assert [(i.name, _dims(i)) for i in model.graph.input] == [("z", ["batch", 4])]
    assert [(o.name, _dims(o)) for o in model.graph.output] == [("x_mean", ["batch", 1, 28, 28])]
    assert {i.domain or "ai.onnx": i.version for i in model.opset_import}["ai.onnx"] == OPSET >= 18
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def test_decoder_matches_torch_on_fresh_latents(mlp: VAE, exported: tuple[str, str]) -> None:
    session = ort.InferenceSession(exported[0], providers=["CPUExecutionProvider"])
    for n, scale in [(1, 1.0), (7, 1.0), (300, 3.0)]:
        z = (np.random.default_rng(123 + n).standard_normal((n, 4)) * scale).astype(np.float32)
        got = session.run(None, {"z": z})[0]
        with torch.no_grad():
            want = mlp.decode(torch.from_numpy(z)).numpy()
        assert got.shape == (n, 1, 28, 28)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        assert got.min() >= 0.0 and got.max() <= 1.0  # Bernoulli: probabilities


def test_encoder_has_named_outputs_and_matches_torch(mlp: VAE, exported: tuple[str, str]) -> None:
    model = onnx.load(exported[1])
    assert [(i.name, _dims(i)) for i in model.graph.input] == [("x", ["batch", 1, 28, 28])]
    assert [o.name for o in model.graph.output] == ["mu", "logvar"]
    x = np.random.default_rng(5).random((9, 1, 28, 28)).astype(np.float32)
    mu, logvar = OnnxEncoder(exported[1]).encode(x)
    with torch.no_grad():
        want_mu, want_logvar = mlp.encode(torch.from_numpy(x))
    np.testing.assert_allclose(mu, want_mu.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(logvar, want_logvar.numpy(), atol=1e-5, rtol=0)


def test_metadata_is_json_under_our_prefix(mlp: VAE, exported: tuple[str, str]) -> None:
    props = _props(exported[0])
    assert all(k.startswith(META_PREFIX) for k in props)
    meta = {k.removeprefix(META_PREFIX): json.loads(v) for k, v in props.items()}
    assert meta["format_version"] == 1
    assert meta["role"] == "decoder"
    assert meta["latent_dim"] == 4
    assert meta["data_shape"] == [1, 28, 28]
    assert meta["likelihood"] == "bernoulli"
    assert meta["output"] == "probabilities"
    assert meta["producer"].startswith("latent-explorer ")
    assert meta["model_config"] == mlp.config.to_dict()
    for key, value in RUN_META.items():
        assert meta[key] == value
    enc_meta = {k.removeprefix(META_PREFIX): json.loads(v) for k, v in _props(exported[1]).items()}
    assert enc_meta["role"] == "encoder" and enc_meta["latent_dim"] == 4


def test_model_fields_override_passed_metadata_and_nan_becomes_null(mlp: VAE, tmp_path) -> None:
    path = tmp_path / "dec.onnx"
    export_decoder(mlp, path, {"latent_dim": 99, "elbo": float("nan"), "kl_per_dim": np.array([1.5, np.inf])})
    meta = OnnxDecoder(path).metadata
    assert meta["latent_dim"] == 4
    assert meta["elbo"] is None
    assert meta["kl_per_dim"] == [1.5, None]


def test_unserialisable_metadata_is_refused_before_writing(mlp: VAE, tmp_path) -> None:
    path = tmp_path / "dec.onnx"
    with pytest.raises(ExportError, match="metadata 'weird'"):
        export_decoder(mlp, path, {"weird": object()})
    assert os.listdir(tmp_path) == []


def test_conv_gaussian_decoder_exports_means(tmp_path) -> None:
    cfg = ModelConfig(arch="conv", data_shape=(3, 32, 32), latent_dim=3, hidden=(8, 16, 32),
                      likelihood="gaussian", obs_std=0.1)
    vae = _trained_like(cfg, seed=1)
    report = export_decoder(vae, tmp_path / "dec.onnx", {"scaling": "none"})
    assert report.max_abs_diff < 1e-4 and report.n_checked >= 1024 + 64 + 1
    dec = OnnxDecoder(tmp_path / "dec.onnx")
    assert dec.metadata["output"] == "means"
    assert dec.metadata["obs_std"] == pytest.approx(0.1)
    z = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    with torch.no_grad():
        want = vae.decode(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(dec.decode_raw(z), want, atol=1e-5, rtol=0)
    assert dec.output_shape == (3, 32, 32) and dec.image_shape == (32, 32, 3)


def test_export_leaves_the_callers_model_alone(tmp_path) -> None:
    vae = _trained_like(ModelConfig(latent_dim=2, hidden=(16,)))
    vae.train()
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    export_decoder(vae, tmp_path / "dec.onnx")
    assert vae.training
    for k, v in vae.state_dict().items():
        assert torch.equal(v, before[k])


# --------------------------------------------------------------------------- failures, atomicity
def _other_decoder_proto(cfg: ModelConfig):
    """A correct export of a *different* VAE: what a broken exporter would hand back."""
    other = onnx_export.DecoderMean(_trained_like(cfg, seed=99)).eval()
    return onnx_export._to_onnx(other, torch.randn(2, cfg.latent_dim), "z", ["x_mean"], OPSET)


def test_a_file_that_disagrees_with_torch_fails_and_leaves_nothing(mlp: VAE, tmp_path, monkeypatch) -> None:
    wrong = _other_decoder_proto(mlp.config)
    monkeypatch.setattr(onnx_export, "_to_onnx", lambda *a, **k: wrong)
    path = tmp_path / "dec.onnx"
    with pytest.raises(ExportError) as info:
        export_decoder(mlp, path)
    message = str(info.value)
    assert "verification failed" in message and "dec.onnx" in message and "\n" not in message
    assert os.listdir(tmp_path) == []  # no file, no temporary file


def test_a_failed_export_keeps_the_existing_file(mlp: VAE, tmp_path, monkeypatch) -> None:
    path = tmp_path / "dec.onnx"
    path.write_bytes(b"the previous, good export")
    wrong = _other_decoder_proto(mlp.config)
    monkeypatch.setattr(onnx_export, "_to_onnx", lambda *a, **k: wrong)
    with pytest.raises(ExportError):
        export_decoder(mlp, path, overwrite=True)
    assert path.read_bytes() == b"the previous, good export"
    assert os.listdir(tmp_path) == ["dec.onnx"]


def test_exporter_crash_becomes_one_line_export_error(mlp: VAE, tmp_path, monkeypatch) -> None:
    def crash(*args, **kwargs):
        raise RuntimeError("unsupported operator aten::frobnicate\nlong details")

    monkeypatch.setattr(onnx_export, "_to_onnx", crash)
    with pytest.raises(ExportError, match="aten::frobnicate") as info:
        export_decoder(mlp, tmp_path / "dec.onnx")
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_existing_file_needs_overwrite(mlp: VAE, tmp_path) -> None:
    path = tmp_path / "dec.onnx"
    path.write_bytes(b"keep me")
    with pytest.raises(ExportError, match="exists"):
        export_decoder(mlp, path)
    assert path.read_bytes() == b"keep me"
    export_decoder(mlp, path, overwrite=True)
    assert OnnxDecoder(path).latent_dim == 4
    assert os.listdir(tmp_path) == ["dec.onnx"]


def test_missing_directory_is_an_export_error(mlp: VAE, tmp_path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        export_decoder(mlp, tmp_path / "nowhere" / "dec.onnx")


def _no_export(*args, **kwargs):
    raise AssertionError("the slow torch export ran before the target was checked")


def test_unwritable_directory_is_refused_before_the_export(mlp: VAE, tmp_path, monkeypatch) -> None:
    # The tests may run as root, for whom chmod 555 changes nothing: os.access says no instead.
    monkeypatch.setattr(onnx_export, "_to_onnx", _no_export)
    monkeypatch.setattr(onnx_export.os, "access", lambda path, mode: False)
    with pytest.raises(ExportError, match=r"dec\.onnx: directory .* is not writable"):
        export_decoder(mlp, tmp_path / "dec.onnx")
    assert os.listdir(tmp_path) == []


def test_a_file_name_too_long_is_refused_before_the_export(mlp: VAE, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(onnx_export, "_to_onnx", _no_export)
    with pytest.raises(ExportError, match="file name too long") as info:
        export_decoder(mlp, tmp_path / ("d" * 300 + ".onnx"))
    assert "\n" not in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_long_but_valid_name_is_written(mlp: VAE, tmp_path) -> None:
    """The temporary file's name is built from a prefix of the target's, so a name near the
    file system's limit (255 bytes) still leaves room for it."""
    path = tmp_path / ("d" * 245 + ".onnx")
    export_decoder(mlp, path)
    assert os.listdir(tmp_path) == [path.name]


def _failing_replace(fail_if, errno_=28, strerror="No space left on device"):
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if fail_if(os.fspath(dst)):
            raise OSError(errno_, strerror, os.fspath(src), None, os.fspath(dst))
        return real(src, dst, *args, **kwargs)

    return replace


def test_a_failed_write_names_the_target_not_the_temporary_file(mlp: VAE, tmp_path, monkeypatch) -> None:
    path = tmp_path / "dec.onnx"
    path.write_bytes(b"the previous export")
    monkeypatch.setattr(onnx_export.os, "replace", _failing_replace(lambda dst: True))
    with pytest.raises(ExportError) as info:
        export_decoder(mlp, path, overwrite=True)
    message = str(info.value)
    assert message == f"{path}: cannot write it (No space left on device)"
    assert path.read_bytes() == b"the previous export"
    assert os.listdir(tmp_path) == ["dec.onnx"]


def test_a_failed_temporary_file_names_the_target(mlp: VAE, tmp_path, monkeypatch) -> None:
    def mkstemp(*args, dir=None, prefix="", suffix="", **kwargs):
        raise OSError(30, "Read-only file system", os.path.join(dir, prefix + "x1y2z3" + suffix))

    monkeypatch.setattr(onnx_export.tempfile, "mkstemp", mkstemp)
    with pytest.raises(ExportError, match=r"^.*dec\.onnx: cannot write it \(Read-only file system\)$"):
        export_decoder(mlp, tmp_path / "dec.onnx")
    assert os.listdir(tmp_path) == []


def test_committing_two_exports_is_all_or_nothing(mlp: VAE, tmp_path, monkeypatch) -> None:
    """When the second file cannot be renamed into place, the first, already renamed, is put
    back: an existing decoder gets its old bytes back, and no file or temporary is left over."""
    dec, enc = tmp_path / "dec.onnx", tmp_path / "enc.onnx"
    dec.write_bytes(b"old decoder")
    os.chmod(dec, 0o640)
    pending = [
        onnx_export.prepare_export(mlp, dec, None, "decoder", overwrite=True),
        onnx_export.prepare_export(mlp, enc, None, "encoder", overwrite=True),
    ]
    assert dec.read_bytes() == b"old decoder" and not enc.exists()  # nothing in place yet
    monkeypatch.setattr(onnx_export.os, "replace", _failing_replace(lambda dst: dst.endswith("enc.onnx")))
    with pytest.raises(ExportError, match=r"enc\.onnx: cannot write it"):
        onnx_export.commit_exports(pending)
    assert dec.read_bytes() == b"old decoder" and (os.stat(dec).st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["dec.onnx"]

    monkeypatch.undo()
    dec.unlink()
    pending = [
        onnx_export.prepare_export(mlp, dec, None, "decoder"),
        onnx_export.prepare_export(mlp, enc, None, "encoder"),
    ]
    monkeypatch.setattr(onnx_export.os, "replace", _failing_replace(lambda dst: dst.endswith("enc.onnx")))
    with pytest.raises(ExportError):
        onnx_export.commit_exports(pending)
    assert os.listdir(tmp_path) == []  # the decoder that did not exist before is removed again

    # Ctrl-C between the two renames (the app interrupts an export child when it closes).
    monkeypatch.undo()
    dec.write_bytes(b"old decoder")
    pending = [
        onnx_export.prepare_export(mlp, dec, None, "decoder", overwrite=True),
        onnx_export.prepare_export(mlp, enc, None, "encoder", overwrite=True),
    ]
    real = os.replace

    def interrupted(src, dst, *args, **kwargs):
        if os.fspath(dst).endswith("enc.onnx"):
            raise KeyboardInterrupt
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(onnx_export.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        onnx_export.commit_exports(pending)
    assert dec.read_bytes() == b"old decoder"
    assert os.listdir(tmp_path) == ["dec.onnx"]

    monkeypatch.undo()
    dec.unlink()
    pending = [
        onnx_export.prepare_export(mlp, dec, None, "decoder"),
        onnx_export.prepare_export(mlp, enc, None, "encoder"),
    ]
    reports = onnx_export.commit_exports(pending)
    assert [r.role for r in reports] == ["decoder", "encoder"]
    assert sorted(os.listdir(tmp_path)) == ["dec.onnx", "enc.onnx"]
    assert OnnxDecoder(dec).latent_dim == 4 and OnnxEncoder(enc).latent_dim == 4


def test_files_are_ir_version_10_at_most(exported: tuple[str, str]) -> None:
    """docs/onnx.md and pyproject promise onnxruntime >= 1.18 reads our files: 1.18 reads ONNX
    IR versions up to 10. A newer exporter writing IR 11 would need the docs and the floor raised."""
    for path in exported:
        assert onnx.load(path).ir_version <= 10


# --------------------------------------------------------------------------- run metadata
def _fake_reader(val_elbo: list[float], activity: list[list[float]]) -> SimpleNamespace:
    """The parts of a RunReader that metadata_from_run reads (RunReader itself lives in
    models.io.runfile; its own tests cover the file format)."""
    cfg = RunConfig(
        model=ModelConfig(latent_dim=3, hidden=(16,)),
        objective=ObjectiveConfig(beta=2.0),
        train=TrainConfig(data="mnist"),
    )
    n = len(val_elbo)
    return SimpleNamespace(
        config=cfg,
        dataset_info={"name": "mnist", "scaling": "uint8/255"},
        epochs=lambda: {
            "epoch": np.arange(1, n + 1),
            "val_elbo": np.array(val_elbo),
            "val_rate": np.linspace(10, 20, n),
            "val_distortion": -np.array(val_elbo) - np.linspace(10, 20, n),
            "val_kl_per_dim": np.tile([[5.0, 0.002, 10.0]], (n, 1)),
            "activity_per_dim": np.array(activity),
        },
    )


def test_metadata_from_run_takes_the_last_finished_epoch() -> None:
    reader = _fake_reader([-120.0, -110.0, float("nan")], [[1.0, 0.5, 2.0], [1.2, 0.004, 2.5], [np.nan] * 3])
    meta = metadata_from_run(reader)
    assert meta["dataset"] == "mnist" and meta["scaling"] == "uint8/255"
    assert meta["metrics_epoch"] == 2 and meta["metrics_split"] == "validation"
    assert meta["elbo"] == -110.0
    assert meta["rate"] == pytest.approx(15.0)
    assert meta["distortion"] == pytest.approx(110.0 - 15.0)
    assert meta["elbo"] == pytest.approx(-(meta["rate"] + meta["distortion"]))
    assert meta["kl_per_dim"] == [5.0, 0.002, 10.0]
    assert meta["collapsed_dims"] == [1]
    assert meta["objective"]["beta"] == 2.0


def test_a_decoder_of_dequantised_bytes_shows_its_values_in_their_bins(tmp_path) -> None:
    # A Gaussian trained on 8-bit data sees (k + u) / 256: its exported decoder says which
    # values are black and white, so decode_uint8 shows v as the level of its bin, floor(256 v).
    from models.latent.discrete import LikelihoodKind, display_range

    reader = _fake_reader([-5.0], [[1.0, 1.0, 1.0]])
    reader.config = RunConfig(model=ModelConfig(latent_dim=3, hidden=(16,), likelihood="gaussian"),
                              train=TrainConfig(data="mnist"))
    assert "display_range" not in metadata_from_run(reader)  # an older file: trained on k / 255
    reader.dataset_info = {**reader.dataset_info, "likelihood_kind": LikelihoodKind.DISCRETE.value}
    meta = metadata_from_run(reader)
    assert meta["display_range"] == [0.5 / 256, 255.5 / 256]
    vae = _trained_like(reader.config.model, seed=2)
    export_decoder(vae, tmp_path / "dec.onnx", meta)
    dec = OnnxDecoder(tmp_path / "dec.onnx")
    assert dec.display_range == display_range(True)
    z = np.random.default_rng(1).standard_normal((64, 3)).astype(np.float32)
    raw = dec.decode_raw(z).reshape(64, -1).astype(np.float64)
    bins = np.clip(np.floor(256 * raw), 0, 255)
    inside = np.abs(256 * raw - np.rint(256 * raw)) > 1e-3  # not on a bin's edge (float32)
    assert inside.mean() > 0.9
    np.testing.assert_array_equal(dec.decode_uint8(z).reshape(64, -1)[inside], bins[inside])


def test_metadata_names_an_hdf5_data_set_by_its_base_name(tmp_path) -> None:
    """A shared file must not carry the sender's directories: ``dataset`` is the HDF5 file's base
    name and the array path, as the run file's real data-set description gives them."""
    import h5py

    from models.data import open_hdf5

    folder = tmp_path / "private" / "home"
    folder.mkdir(parents=True)
    with h5py.File(folder / "flat.h5", "w") as f:
        f.create_dataset("grp/x", data=np.random.default_rng(0).random((20, 6, 6)).astype(np.float32))
    info = open_hdf5(f"{folder / 'flat.h5'}:grp/x").describe()
    assert str(folder) in info["name"]  # what the run file stores, and what leaked before
    reader = _fake_reader([-5.0], [[1.0, 1.0, 1.0]])
    reader.dataset_info = info
    meta = metadata_from_run(reader)
    assert meta["dataset"] == "flat.h5:grp/x"
    assert str(tmp_path) not in json.dumps(meta)


@pytest.mark.parametrize(
    ("info", "spec", "want"),
    [
        ({"name": "mnist"}, "mnist", "mnist"),
        ({"name": "shapes:32"}, "shapes:32", "shapes:32"),
        ({}, "shapes", "shapes"),
        ({"name": "/srv/alice/data/flat.h5:x"}, "/srv/alice/data/flat.h5:x", "flat.h5:x"),  # older run files
        ({}, "/srv/alice/data/flat.h5", "flat.h5"),
    ],
)
def test_shareable_dataset_name(info, spec, want) -> None:
    assert shareable_dataset_name(info, spec) == want


def test_metadata_from_run_without_epochs_has_no_figures() -> None:
    meta = metadata_from_run(_fake_reader([], np.zeros((0, 3)).tolist()))
    assert meta["metrics_epoch"] is None
    assert "elbo" not in meta and "collapsed_dims" not in meta
