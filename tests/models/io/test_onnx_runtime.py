"""The torch-free runtime: our files, third-party decoders, refusals, display values, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from models.config import ModelConfig
from models.errors import ModelFileError
from models.io.onnx_export import export_decoder, export_encoder
from models.io.onnx_runtime import META_PREFIX, OnnxDecoder, OnnxEncoder, image_shape, inspect_model, to_images
from models.nn.vae import VAE

ROOT = Path(__file__).resolve().parents[3]
W = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)


def _save(model: onnx.ModelProto, path: Path, check: bool = True) -> Path:
    if check:  # the checker insists on declared output shapes; a probe-run test omits them
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _matmul_decoder(path: Path, *, in_shape=("N", 3), out_shape=("N", 4), elem=TensorProto.FLOAT,
                    weight=W, post: str | None = "Sigmoid", meta: dict[str, str] | None = None) -> Path:
    """A third-party decoder z @ W (then an activation), built without torch."""
    dtype = helper.tensor_dtype_to_np_dtype(elem)
    nodes = [helper.make_node("MatMul", ["z", "W"], ["h" if post else "y"])]
    if post:
        nodes.append(helper.make_node(post, ["h"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "third_party",
        [helper.make_tensor_value_info("z", elem, list(in_shape))],
        [helper.make_tensor_value_info("y", elem, list(out_shape) if out_shape else None)],
        [numpy_helper.from_array(weight.astype(dtype), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    return _save(model, path, check=out_shape is not None)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> tuple[VAE, Path, Path]:
    torch.manual_seed(0)
    vae = VAE(ModelConfig(latent_dim=5, hidden=(48, 24)))
    folder = tmp_path_factory.mktemp("ours")
    dec, enc = folder / "dec.onnx", folder / "enc.onnx"
    meta = {"dataset": "mnist", "scaling": "uint8/255", "elbo": -99.5, "collapsed_dims": [3]}
    export_decoder(vae, dec, meta)
    export_encoder(vae, enc, meta)
    return vae, dec, enc


# --------------------------------------------------------------------------- our files
def test_opens_our_decoder_and_reads_its_metadata(ours) -> None:
    _, dec, _ = ours
    d = OnnxDecoder(dec)
    assert d.latent_dim == 5
    assert d.output_shape == (1, 28, 28)
    assert d.image_shape == (28, 28)
    assert d.display_range == (0.0, 1.0)
    assert d.metadata["likelihood"] == "bernoulli"
    assert d.metadata["dataset"] == "mnist"
    assert d.metadata["elbo"] == -99.5
    assert d.metadata["collapsed_dims"] == [3]


def test_decode_matches_torch_and_is_display_ready(ours) -> None:
    vae, dec, _ = ours
    d = OnnxDecoder(dec)
    z = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    with torch.no_grad():
        want = vae.decode(torch.from_numpy(z)).numpy()
    x = d.decode(z)
    assert x.dtype == np.float32 and x.shape == (6, 1, 28, 28)
    np.testing.assert_allclose(x, want, atol=1e-5, rtol=0)
    img = d.decode_uint8(z)
    assert img.dtype == np.uint8 and img.shape == (6, 28, 28)
    np.testing.assert_array_equal(img, np.round(want[:, 0] * 255).astype(np.uint8))


def test_one_vector_decodes_without_batch_axis_and_inputs_are_converted(ours) -> None:
    _, dec, _ = ours
    d = OnnxDecoder(dec)
    z = [0.5, -1.0, 0.0, 2.0, 1.0]  # a list of Python floats (float64 once converted)
    one = d.decode(z)
    assert one.shape == (1, 28, 28)
    np.testing.assert_array_equal(one, d.decode(np.asarray([z], dtype=np.float32))[0])
    assert d.decode_uint8(z).shape == (28, 28)
    column = np.asfortranarray(np.random.default_rng(2).standard_normal((4, 5)))  # not C-contiguous
    np.testing.assert_allclose(d.decode(column), d.decode(np.ascontiguousarray(column, np.float32)))


def test_large_batches_on_the_thread_pool_agree_with_single_points(ours) -> None:
    _, dec, _ = ours
    d = OnnxDecoder(dec, threads=2)
    z = np.random.default_rng(11).standard_normal((40, 5)).astype(np.float32)
    together = d.decode(z)  # more than SMALL_BATCH: the pooled session
    one_by_one = np.stack([d.decode(row) for row in z])  # the single-threaded session
    np.testing.assert_allclose(together, one_by_one, atol=1e-6, rtol=0)


def test_latent_size_mismatch_and_non_finite_latents_are_refused(ours) -> None:
    _, dec, _ = ours
    d = OnnxDecoder(dec)
    with pytest.raises(ModelFileError, match=r"dec\.onnx.*size 5; got size 4"):
        d.decode(np.zeros((2, 4), np.float32))
    with pytest.raises(ModelFileError, match=r"size 5; got size 3"):
        d.decode([1.0, 2.0, 3.0])
    with pytest.raises(ModelFileError, match=r"size 5; got an array of shape \[2, 3, 5\]"):
        d.decode(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ModelFileError, match="finite"):
        d.decode([0.0, np.nan, 0.0, 0.0, 0.0])
    with pytest.raises(ModelFileError, match="no latent vectors"):
        d.decode(np.zeros((0, 5), np.float32))


@pytest.mark.parametrize(
    ("z", "message"),
    [
        ([["a", "b", "c", "d", "e"]], "array of numbers; got values that are not numbers"),
        ([[1, 2, 3, 4, 5], [1, 2]], "array of numbers; got rows of different lengths"),
        ([[1, 2, 3, 4, 5], {}], "got"),
        ([[object(), 0, 0, 0, 0]], "got values that are not numbers"),
    ],
)
def test_latents_that_are_not_a_numeric_matrix_are_a_model_file_error(ours, z, message) -> None:
    """Strings and ragged rows are the runtime's documented error, not numpy's bare ValueError."""
    d = OnnxDecoder(ours[1])
    with pytest.raises(ModelFileError, match=message) as info:
        d.decode(z)
    assert str(info.value).startswith(str(d.path)) and "\n" not in str(info.value)


def test_latents_beyond_float32_are_refused_without_a_numpy_warning(ours) -> None:
    # pytest turns warnings into errors here, so numpy's "overflow encountered in cast"
    # RuntimeWarning would fail this test instead of the ModelFileError.
    d = OnnxDecoder(ours[1])
    for z in ([[1e40, 0, 0, 0, 0]], np.array([[0, 0, -1e300, 0, 0]]), [0, 0, 0, 0, 3.5e38]):
        with pytest.raises(ModelFileError, match=r"beyond the float32 input's range"):
            d.decode(z)
    np.testing.assert_array_equal(d.decode_raw([[3e38, 0, 0, 0, 0]]).shape, (1, 1, 28, 28))
    # large values whose float32 sum would overflow are finite, and pass without a warning
    big = np.full((1, 5), 3e38, np.float32)
    np.testing.assert_array_equal(d.decode_uint8(big).shape, (1, 28, 28))


def test_encoder_refuses_non_numeric_input_with_a_model_file_error(ours) -> None:
    e = OnnxEncoder(ours[2])
    with pytest.raises(ModelFileError, match="got values that are not numbers"):
        e.encode([["x"] * 784])
    with pytest.raises(ModelFileError, match="got rows of different lengths"):
        e.encode([[0.0] * 784, [0.0]])


def test_encoder_runtime_matches_torch(ours) -> None:
    vae, _, enc = ours
    e = OnnxEncoder(enc)
    assert e.latent_dim == 5 and e.data_shape == (1, 28, 28)
    x = np.random.default_rng(3).random((4, 784))  # flat rows are reshaped
    mu, logvar = e.encode(x)
    with torch.no_grad():
        want_mu, want_logvar = vae.encode(torch.from_numpy(x.astype(np.float32)))
    np.testing.assert_allclose(mu, want_mu.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(logvar, want_logvar.numpy(), atol=1e-5, rtol=0)
    with pytest.raises(ModelFileError, match=r"shape \[1, 28, 28\]"):
        e.encode(np.zeros((2, 100)))


def test_an_encoder_is_not_a_decoder(ours) -> None:
    _, _, enc = ours
    with pytest.raises(ModelFileError, match="not a float matrix"):
        OnnxDecoder(enc)


def test_inspect_model_describes_signature_and_metadata(ours) -> None:
    _, dec, _ = ours
    info = inspect_model(dec)
    assert info["inputs"] == [{"name": "z", "type": "tensor(float)", "shape": ["batch", 5]}]
    assert info["outputs"] == [{"name": "x_mean", "type": "tensor(float)", "shape": ["batch", 1, 28, 28]}]
    assert info["metadata"]["latent_dim"] == 5
    assert info["opset"]["ai.onnx"] >= 18
    json.dumps(info)  # JSON-able as the CLI prints it


# --------------------------------------------------------------------------- third-party files
def test_third_party_decoder_without_metadata(tmp_path) -> None:
    d = OnnxDecoder(_matmul_decoder(tmp_path / "tp.onnx"))
    assert d.metadata == {}
    assert d.latent_dim == 3 and d.output_shape == (4,) and d.image_shape == (2, 2)
    z = np.random.default_rng(4).standard_normal((8, 3)).astype(np.float32)
    np.testing.assert_allclose(d.decode(z), _sigmoid(z @ W), atol=1e-6)
    assert d.display_range == (0.0, 1.0)  # sigmoid outputs already lie in [0, 1]
    assert d.decode_uint8(z).shape == (8, 2, 2)


def test_third_party_output_shape_found_by_a_probe_run(tmp_path) -> None:
    d = OnnxDecoder(_matmul_decoder(tmp_path / "tp.onnx", out_shape=None))
    assert d.output_shape == (4,)
    d = OnnxDecoder(_matmul_decoder(tmp_path / "tp2.onnx", out_shape=("N", "M")))
    assert d.output_shape == (4,)


def test_third_party_double_input_and_fixed_batch_of_one(tmp_path) -> None:
    d = OnnxDecoder(_matmul_decoder(tmp_path / "f64.onnx", elem=TensorProto.DOUBLE))
    z = np.random.default_rng(5).standard_normal((3, 3))
    out = d.decode(z)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _sigmoid(z @ W.astype(np.float64)), atol=1e-6)
    d1 = OnnxDecoder(_matmul_decoder(tmp_path / "b1.onnx", in_shape=(1, 3), out_shape=(1, 4)))
    np.testing.assert_allclose(d1.decode(z.astype(np.float32)), _sigmoid(z @ W), atol=1e-6)


def test_unscaled_outputs_get_a_fixed_display_range(tmp_path) -> None:
    weight = W * 40.0
    d = OnnxDecoder(_matmul_decoder(tmp_path / "g.onnx", weight=weight, post=None))
    lo, hi = d.display_range
    assert lo < -1.0 and hi > 1.0  # raw values spread far outside [0, 1]
    z = np.random.default_rng(6).standard_normal((50, 3)).astype(np.float32)
    raw = d.decode_raw(z)
    np.testing.assert_allclose(raw, z @ weight, rtol=1e-5, atol=1e-4)
    shown = d.decode(z)
    assert shown.min() >= 0.0 and shown.max() <= 1.0
    np.testing.assert_allclose(shown, np.clip((raw - lo) / (hi - lo), 0, 1), atol=1e-6)
    again = OnnxDecoder(tmp_path / "g.onnx")
    assert again.display_range == (lo, hi)  # the same range every time the file is opened


def test_nan_outputs_of_a_broken_decoder_show_as_black(tmp_path) -> None:
    meta = {META_PREFIX + "display_range": "[0.0, 1.0]"}
    d = OnnxDecoder(_matmul_decoder(tmp_path / "log.onnx", post="Log", meta=meta))
    z = np.random.default_rng(12).standard_normal((20, 3)).astype(np.float32)
    raw = d.decode_raw(z)
    assert np.isnan(raw).any() and np.isfinite(raw).any()  # log of negative values
    shown, img = d.decode(z), d.decode_uint8(z)  # no warning (warnings are errors in this suite)
    assert (shown[np.isnan(raw)] == 0).all() and (img.reshape(20, 4)[np.isnan(raw)] == 0).all()
    ok = np.isfinite(raw)
    np.testing.assert_allclose(shown[ok], np.clip(raw[ok], 0, 1), atol=1e-6)


def test_display_range_from_metadata(tmp_path) -> None:
    meta = {META_PREFIX + "display_range": "[-2.0, 2.0]"}
    d = OnnxDecoder(_matmul_decoder(tmp_path / "r.onnx", post=None, meta=meta))
    assert d.display_range == (-2.0, 2.0)
    np.testing.assert_allclose(d.decode(np.zeros((1, 3), np.float32)), 0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"elem": TensorProto.INT64, "post": None}, "not a float matrix"),
        ({"in_shape": ("N", 1, 3), "out_shape": ("N", 1, 4)}, "not a float matrix"),
        ({"in_shape": ("N", "D"), "out_shape": ("N", 4)}, "no fixed latent size"),
        ({"meta": {META_PREFIX + "latent_dim": "7"}}, "latent_dim 7"),
        ({"meta": {META_PREFIX + "data_shape": "[1, 2, 2]"}}, "data_shape"),
    ],
)
def test_unusable_decoders_are_refused(tmp_path, kwargs, message) -> None:
    path = _matmul_decoder(tmp_path / "bad.onnx", **kwargs)
    with pytest.raises(ModelFileError, match=message) as info:
        OnnxDecoder(path)
    assert "bad.onnx" in str(info.value) and "\n" not in str(info.value)


def test_two_inputs_are_refused(tmp_path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        "two",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "two.onnx")
    with pytest.raises(ModelFileError, match="2 inputs"):
        OnnxDecoder(path)


# --------------------------------------------------------------------------- not ONNX at all
def _bad_files(tmp_path: Path, good: Path) -> dict[str, Path]:
    data = good.read_bytes()
    files = {
        "empty": b"",
        "random": np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "truncated": data[: len(data) // 2],
        "text": b"this is not a model\n",
        "hdf5": b"\x89HDF\r\n\x1a\n" + b"\0" * 200,
    }
    out = {}
    for name, content in files.items():
        out[name] = tmp_path / f"{name}.onnx"
        out[name].write_bytes(content)
    return out


@pytest.mark.parametrize("kind", ["empty", "random", "truncated", "text", "hdf5"])
def test_files_that_are_not_onnx_are_refused(tmp_path, ours, kind) -> None:
    path = _bad_files(tmp_path, ours[1])[kind]
    for opener in (OnnxDecoder, OnnxEncoder, inspect_model):
        with pytest.raises(ModelFileError) as info:
            opener(path)
        message = str(info.value)
        assert message.startswith(str(path)) and "\n" not in message and len(message) < 300


def test_missing_file_and_directory_are_refused(tmp_path) -> None:
    with pytest.raises(ModelFileError, match="no such file"):
        OnnxDecoder(tmp_path / "missing.onnx")
    with pytest.raises(ModelFileError, match="directory"):
        OnnxDecoder(tmp_path)


def test_image_layouts() -> None:
    assert image_shape((1, 28, 28)) == (28, 28)
    assert image_shape((3, 32, 32)) == (32, 32, 3)
    assert image_shape((784,)) == (28, 28)
    assert image_shape((10,)) == (1, 10)
    assert image_shape((28, 28)) == (28, 28)
    assert image_shape((16, 16, 3)) == (16, 16, 3)
    assert image_shape([np.int64(1), 28, 28]) == (28, 28)  # any sequence of integers
    x = np.arange(2 * 784)
    for shape in ((784,), [784], (np.int64(784),), (1, 28, 28), [28, 28]):
        np.testing.assert_array_equal(to_images(x.reshape(2, *shape), shape), x.reshape(2, 28, 28))
    assert to_images(np.zeros((2, 10)), (10,)).shape == (2, 1, 10)


def test_rgb_images_are_channels_last(tmp_path) -> None:
    weight = np.random.default_rng(8).standard_normal((3, 12)).astype(np.float32)
    # z @ W reshaped to (3, 2, 2): built as MatMul -> Sigmoid -> Reshape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["z", "W"], ["h"]),
            helper.make_node("Sigmoid", ["h"], ["s"]),
            helper.make_node("Reshape", ["s", "shape"], ["y"]),
        ],
        "rgb",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 2, 2])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(np.array([-1, 3, 2, 2]), "shape")],
    )
    path = _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "rgb.onnx")
    d = OnnxDecoder(path)
    z = np.random.default_rng(9).standard_normal((2, 3)).astype(np.float32)
    x = d.decode(z)
    img = d.decode_uint8(z)
    assert img.shape == (2, 2, 2, 3)
    np.testing.assert_array_equal(img, np.round(x.transpose(0, 2, 3, 1) * 255).astype(np.uint8))


# --------------------------------------------------------------------------- without torch
BLOCKER = textwrap.dedent(
    """
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("torch is not installed here")
            return None

    sys.meta_path.insert(0, _NoTorch())
    """
)


def run_without_torch(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run Python code in a fresh interpreter in which `import torch` fails."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def test_the_blocker_really_blocks_torch() -> None:
    proc = run_without_torch("import torch")
    assert proc.returncode != 0 and "torch is not installed here" in proc.stderr


def test_decodes_in_a_fresh_process_without_torch_to_torch_numbers(ours, tmp_path) -> None:
    vae, dec, enc = ours
    z = np.random.default_rng(10).standard_normal((16, 5)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    proc = run_without_torch(
        f"""
        import sys
        import numpy as np
        from models.io.onnx_runtime import OnnxDecoder, OnnxEncoder
        d = OnnxDecoder({str(dec)!r})
        z = np.load({str(tmp_path / 'z.npy')!r})
        np.save({str(tmp_path / 'x.npy')!r}, d.decode(z))
        np.save({str(tmp_path / 'u8.npy')!r}, d.decode_uint8(z))
        mu, logvar = OnnxEncoder({str(enc)!r}).encode(np.zeros((2, 1, 28, 28), np.float32))
        assert "torch" not in sys.modules, "torch was imported"
        print("ok", d.latent_dim, d.output_shape, d.metadata["dataset"], mu.shape)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ok", "5", "(1,", "28,", "28)", "mnist", "(2,", "5)"]
    with torch.no_grad():
        want = vae.decode(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), want, atol=1e-5, rtol=0)
    assert np.load(tmp_path / "u8.npy").shape == (16, 28, 28)


def test_refusals_work_without_torch(tmp_path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    proc = run_without_torch(
        f"""
        import sys
        from models.errors import ModelFileError
        from models.io.onnx_runtime import OnnxDecoder
        try:
            OnnxDecoder({str(tmp_path / 'junk.onnx')!r})
        except ModelFileError as exc:
            print("refused:", exc)
        assert "torch" not in sys.modules
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("refused: ") and "junk.onnx" in proc.stdout


# --------------------------------------------------------------------------- grey levels
def test_a_model_of_dequantised_bytes_shows_each_value_as_its_bin() -> None:
    # Trained on (k + u) / 256, a model's values lie in the bins of the levels k. Shown with
    # (0, 1) as black and white, 255 v rounded put up to half a level off the bin: v just
    # under 1/256 (bin 0) was shown as level 1.
    from models.io.onnx_runtime import grey_levels, to_display
    from models.latent.discrete import display_range

    k = np.arange(256)
    u = np.random.default_rng(3).uniform(0.01, 0.99, (40, 256))
    v = ((k + u) / 256).astype(np.float32)
    shown = display_range(True)
    np.testing.assert_array_equal(grey_levels(v, shown, (256,)).reshape(v.shape), np.broadcast_to(k, v.shape))
    centres = ((k + 0.5) / 256).astype(np.float32)
    np.testing.assert_allclose(to_display(centres.copy(), shown), k / 255, atol=1e-6)  # as the data
    old = grey_levels(v, (0.0, 1.0), (256,)).reshape(v.shape)
    assert (old != k).any()  # what (0, 1) showed: the test tells the two apart
    assert display_range(False) == (0.0, 1.0)  # data read as k / 255 are shown as they are


def test_grey_levels_clip_and_show_nan_as_black() -> None:
    from models.io.onnx_runtime import grey_levels

    x = np.array([[-1.0, np.nan, 0.25, 2.0, np.inf, -np.inf]], np.float32)
    np.testing.assert_array_equal(grey_levels(x, (0.0, 1.0), (6,)).ravel(), [0, 0, 64, 255, 255, 0])
    np.testing.assert_array_equal(grey_levels(x, (-1.0, 3.0), (6,)).ravel(), [0, 0, 80, 191, 255, 0])
    assert x[0, 2] == np.float32(0.25)  # the caller's array is left as it was
