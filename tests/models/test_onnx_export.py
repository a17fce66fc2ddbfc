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

from models import onnx_export
from models.config import ModelConfig, ObjectiveConfig, RunConfig, TrainConfig
from models.errors import ExportError
from models.onnx_export import (
    OPSET,
    export_decoder,
    export_encoder,
    metadata_from_run,
)
from models.runtime import META_PREFIX, OnnxDecoder, OnnxEncoder
from models.vae import VAE

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


# --------------------------------------------------------------------------- run metadata
def _fake_reader(val_elbo: list[float], activity: list[list[float]]) -> SimpleNamespace:
    """The parts of a RunReader that metadata_from_run reads (RunReader itself lives in
    models.runfile; its own tests cover the file format)."""
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


def test_metadata_from_run_without_epochs_has_no_figures() -> None:
    meta = metadata_from_run(_fake_reader([], np.zeros((0, 3)).tolist()))
    assert meta["metrics_epoch"] is None
    assert "elbo" not in meta and "collapsed_dims" not in meta
