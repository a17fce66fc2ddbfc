"""`latent-explorer export | inspect | decode`: a run trained by the CLI, end to end, torch-free
inspect/decode, the PNG writer, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

from models.cli import main
from models.cli.decode import encode_png, grid_shape, parse_z
from models.errors import ConfigError
from models.latent.geometry import prior_samples, tile
from models.io.runfile import RunReader
from models.io.onnx_runtime import OnnxDecoder

ROOT = Path(__file__).resolve().parents[3]

NO_TORCH = textwrap.dedent(
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


def _python(code: str, cwd: Path, block_torch: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, "-c", (NO_TORCH if block_torch else "") + textwrap.dedent(code)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def read_png(path: Path) -> np.ndarray:
    """A strict reader for the PNGs we write (8-bit grey or RGB, filter 0): checks every CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            assert pos + 12 + length == len(data)
        pos += 12 + length
    w, h, depth, color, *_ = header
    assert depth == 8 and color in (0, 2)
    channels = 1 if color == 0 else 3
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * channels)
    assert (raw[:, 0] == 0).all()
    pixels = raw[:, 1:].reshape(h, w, channels)
    return pixels[:, :, 0] if channels == 1 else pixels


# --------------------------------------------------------------------------- a run trained by the CLI
@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "train", "--data", "mnist", "--max-samples", "500",
         "--epochs", "2", "--latent-dim", "3", "--hidden", "32,16", "--batch-size", "100",
         "--out", str(folder / "run.h5")],
        cwd=folder, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )
    assert proc.returncode == 0, proc.stderr
    return folder / "run.h5"


@pytest.fixture(scope="module")
def exported(run_file: Path) -> tuple[Path, Path, str]:
    folder = run_file.parent
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "export", str(run_file),
         "--decoder", "dec.onnx", "--encoder", "enc.onnx"],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # the torch exporter's chatter is kept off the terminal
    return folder / "dec.onnx", folder / "enc.onnx", proc.stdout


def test_export_reports_verification(exported) -> None:
    _, _, stdout = exported
    lines = stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("decoder -> dec.onnx") and "verified on" in lines[0]
    assert lines[1].startswith("encoder -> enc.onnx")


def test_exported_decoder_matches_the_runs_model_and_metadata(run_file: Path, exported) -> None:
    import torch

    dec_path, _, _ = exported
    with RunReader(run_file) as run:
        vae = run.load_model()
        epochs = run.epochs()
    dec = OnnxDecoder(dec_path)
    meta = dec.metadata
    assert dec.latent_dim == 3 and dec.output_shape == (1, 28, 28)
    assert meta["dataset"] == "mnist" and meta["scaling"] == "uint8/255"
    assert meta["metrics_epoch"] == int(epochs["epoch"][-1]) == 2
    assert meta["elbo"] == pytest.approx(float(epochs["val_elbo"][-1]))
    assert meta["rate"] == pytest.approx(float(epochs["val_rate"][-1]))
    assert meta["distortion"] == pytest.approx(float(epochs["val_distortion"][-1]))
    assert meta["kl_per_dim"] == pytest.approx(epochs["val_kl_per_dim"][-1].tolist())
    activity = epochs["activity_per_dim"][-1]
    assert meta["collapsed_dims"] == [i for i in range(3) if activity[i] <= 0.01]
    assert meta["run_file"] == "run.h5"
    z = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
    with torch.no_grad():
        want = vae.decode(torch.from_numpy(z)).numpy()
    np.testing.assert_allclose(dec.decode(z), want, atol=1e-5, rtol=0)


def test_inspect_and_decode_run_without_torch(exported, tmp_path: Path) -> None:
    dec_path, enc_path, _ = exported
    proc = _python(
        f"""
        import sys
        from models.cli import main
        codes = [
            main(["inspect", {str(dec_path)!r}]),
            main(["inspect", {str(enc_path)!r}]),
            main(["decode", {str(dec_path)!r}, "--prior", "10", "--seed", "3", "--out", "prior.png"]),
            main(["decode", {str(dec_path)!r}, "--z", "0,0,0;1,-1,0.5", "--z", "2,2,2", "--out", "z.png"]),
        ]
        assert "torch" not in sys.modules, "torch was imported"
        print("codes", codes)
        """,
        cwd=tmp_path,
        block_torch=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "codes [0, 0, 0, 0]" in out
    assert "input   z: float [batch, 3]" in out
    assert "output  x_mean: float [batch, 1, 28, 28]" in out
    assert "output  mu: float [batch, 3]" in out and "output  logvar: float [batch, 3]" in out
    for line in ("latent_dim        3", "likelihood        bernoulli", "dataset           mnist",
                 "role              encoder", "collapsed_dims"):
        assert line in out

    # The grids hold exactly the runtime's images, tiled row by row.
    dec = OnnxDecoder(dec_path)
    prior = read_png(tmp_path / "prior.png")
    want = tile(dec.decode_uint8(prior_samples(10, 3, seed=3)), *grid_shape(10), pad=1, fill=0)
    np.testing.assert_array_equal(prior, want)
    assert prior.shape == (3 * 29 - 1, 4 * 29 - 1)
    zs = np.array([[0, 0, 0], [1, -1, 0.5], [2, 2, 2]], np.float32)
    np.testing.assert_array_equal(read_png(tmp_path / "z.png"), tile(dec.decode_uint8(zs), 2, 2))


def test_the_cli_parser_builds_without_torch(tmp_path: Path) -> None:
    proc = _python(
        """
        import sys
        from models.cli import build_parser
        build_parser()
        assert "torch" not in sys.modules
        """,
        cwd=tmp_path,
        block_torch=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_export_force_replaces_and_refuses_without(run_file: Path, exported, tmp_path: Path, capsys) -> None:
    target = tmp_path / "dec.onnx"
    target.write_bytes(b"old")
    assert main(["export", str(run_file), "--decoder", str(target)]) == 2
    assert target.read_bytes() == b"old"
    assert "use --force" in capsys.readouterr().err
    assert main(["export", str(run_file), "--decoder", str(target), "--force"]) == 0
    assert OnnxDecoder(target).latent_dim == 3
    assert sorted(os.listdir(tmp_path)) == ["dec.onnx"]  # no temporary files left


def test_export_with_encoder_writes_both_files_or_neither(run_file: Path, exported, tmp_path: Path,
                                                          capsys, monkeypatch) -> None:
    from models.io import onnx_export

    dec = tmp_path / "dec.onnx"
    args = ["export", str(run_file), "--decoder", str(dec)]
    # The encoder's directory does not exist: the decoder is not written either.
    assert main([*args, "--encoder", str(tmp_path / "nowhere" / "enc.onnx")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "does not exist" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []
    # With --force, an existing decoder keeps its bytes.
    dec.write_bytes(b"old decoder")
    assert main([*args, "--encoder", str(tmp_path / "nowhere" / "enc.onnx"), "--force"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert dec.read_bytes() == b"old decoder"
    # The encoder's export fails after the decoder's has succeeded: still nothing is replaced.
    real = onnx_export._to_onnx

    def encoder_fails(module, example, input_name, output_names, opset):
        if input_name == onnx_export.ENCODER_INPUT:
            raise RuntimeError("unsupported operator in the encoder")
        return real(module, example, input_name, output_names, opset)

    monkeypatch.setattr(onnx_export, "_to_onnx", encoder_fails)
    assert main([*args, "--encoder", str(tmp_path / "enc.onnx"), "--force"]) == 2
    err = capsys.readouterr().err
    assert "enc.onnx: torch could not export the encoder" in err and err.count("\n") == 1
    assert dec.read_bytes() == b"old decoder"
    assert os.listdir(tmp_path) == ["dec.onnx"]  # no encoder, no temporary files


def test_decode_takes_negative_latents_as_written(exported, tmp_path: Path, capsys) -> None:
    """--z "-1,0,0" starts with '-': argparse must not take it for an option."""
    dec_path = exported[0]
    out = tmp_path / "neg.png"
    code = main(["decode", str(dec_path), "--z", "-1,0,0", "--z", "-.5 1 -2", "--z", "-1e-1,2,3",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    zs = np.array([[-1, 0, 0], [-0.5, 1, -2], [-0.1, 2, 3]], np.float32)
    want = tile(OnnxDecoder(dec_path).decode_uint8(zs), *grid_shape(3), pad=1, fill=0)
    np.testing.assert_array_equal(read_png(out), want)


def test_decode_replaces_an_existing_png_only_with_force(exported, tmp_path: Path, capsys) -> None:
    out = tmp_path / "grid.png"
    out.write_bytes(b"keep me")
    args = ["decode", str(exported[0]), "--prior", "3", "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == f"latent-explorer decode: error: {out}: file exists (use --force to replace it)\n"
    assert out.read_bytes() == b"keep me"
    assert main([*args, "--force"]) == 0
    assert read_png(out).shape == (2 * 29 - 1, 2 * 29 - 1)
    assert os.listdir(tmp_path) == ["grid.png"]


def test_a_failed_png_write_names_the_target_and_keeps_the_old_file(exported, tmp_path: Path,
                                                                    capsys, monkeypatch) -> None:
    out = tmp_path / "grid.png"
    out.write_bytes(b"keep me")
    real = os.replace

    def full_disk(src, dst, *a, **k):
        if os.fspath(dst) == str(out):
            raise OSError(28, "No space left on device", os.fspath(src), None, os.fspath(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full_disk)
    assert main(["decode", str(exported[0]), "--prior", "2", "--out", str(out), "--force"]) == 2
    assert capsys.readouterr().err == f"latent-explorer decode: error: {out}: No space left on device\n"
    assert out.read_bytes() == b"keep me"
    assert os.listdir(tmp_path) == ["grid.png"]


def test_real_entry_point_prints_one_line_and_no_traceback(exported, tmp_path: Path) -> None:
    """Through a real process (pytest turns warnings into errors; here numpy's overflow warning
    would reach stderr): every bad input gives exit 2 and exactly one line, naming the file."""
    dec = str(exported[0])
    cases = {
        "overflow": ["decode", dec, "--z", "1e40,0,0", "--out", "a.png"],
        "seed": ["decode", dec, "--prior", "2", "--seed", "-1", "--out", "b.png"],
        "long_name": ["decode", dec, "--prior", "2", "--out", "c" * 300 + ".png"],
        "negative": ["decode", dec, "--z", "-1,0,0", "--out", "d.png"],
        "near_limit": ["decode", dec, "--prior", "2", "--out", "e" * 250 + ".png"],
    }
    proc = _python(
        f"""
        import contextlib, io, json, traceback
        from models.cli import main
        results = {{}}
        for name, argv in {cases!r}.items():
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    code = main(argv)
                except SystemExit as exc:
                    code = exc.code
                except BaseException:
                    traceback.print_exc()
                    code = "crashed"
            results[name] = [code, err.getvalue()]
        print(json.dumps(results))
        """,
        cwd=tmp_path,
        block_torch=True,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("overflow", "seed", "long_name"):
        code, err = results[name]
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, (name, err)
        assert err.startswith("latent-explorer decode: error: "), (name, err)
    assert "'1e40' is beyond the float32 range" in results["overflow"][1]
    assert "--seed must be 0 or more, not -1" in results["seed"][1]
    assert f"{'c' * 300}.png: file name too long" in results["long_name"][1]
    assert results["negative"] == [0, ""] and results["near_limit"] == [0, ""]
    assert sorted(os.listdir(tmp_path)) == ["d.png", "e" * 250 + ".png"]  # no temporary files


def test_a_closed_stdout_pipe_ends_quietly(exported, tmp_path: Path) -> None:
    """`latent-explorer inspect X | head -1`: the reader goes away; no traceback, no
    'Exception ignored ... BrokenPipeError', and the status of a SIGPIPE'd program."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "inspect", str(exported[0])],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before the child, still importing, writes anything
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert err == b""


# --------------------------------------------------------------------------- bad input
@pytest.fixture()
def bad_files(tmp_path: Path) -> Path:
    (tmp_path / "random.onnx").write_bytes(np.random.default_rng(0).integers(0, 256, 999, dtype=np.uint8).tobytes())
    (tmp_path / "empty.onnx").write_bytes(b"")
    (tmp_path / "exists.onnx").write_bytes(b"keep")
    (tmp_path / "exists.png").write_bytes(b"keep")
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["inspect", "{d}/random.onnx"], "random.onnx: not a usable ONNX model"),
        (["inspect", "{d}/empty.onnx"], "empty.onnx: empty file"),
        (["inspect", "{d}/missing.onnx"], "missing.onnx: no such file"),
        (["decode", "{d}/random.onnx", "--prior", "4", "--out", "{d}/g.png"], "not a usable ONNX model"),
        (["decode", "{dec}", "--z", "1,2", "--out", "{d}/g.png"], "size 3; got size 2"),
        (["decode", "{dec}", "--z", "1,x,2", "--out", "{d}/g.png"], "'1,x,2' is not a comma-separated"),
        (["decode", "{dec}", "--z", "1,2,3;4,5", "--out", "{d}/g.png"], "different lengths"),
        (["decode", "{dec}", "--z", "1,nan,3", "--out", "{d}/g.png"], "not finite"),
        (["decode", "{dec}", "--z", "1,,3", "--out", "{d}/g.png"], "'1,,3' has an empty field"),
        (["decode", "{dec}", "--z", "1,2,3,", "--out", "{d}/g.png"], "'1,2,3,' has an empty field"),
        (["decode", "{dec}", "--z", "1_0,2,3", "--out", "{d}/g.png"], "'1_0,2,3' is not a comma-separated list of numbers ('1_0': write numbers without '_')"),
        (["decode", "{dec}", "--z", "1e40,2,3", "--out", "{d}/g.png"], "'1e40' is beyond the float32 range"),
        (["decode", "{dec}", "--z", "1,-4e38,3", "--out", "{d}/g.png"], "'-4e38' is beyond the float32"),
        (["decode", "{dec}", "--prior", "2", "--seed", "-1", "--out", "{d}/g.png"], "--seed must be 0 or more"),
        (["decode", "{dec}", "--prior", "2", "--out", "{d}/exists.png"], "exists.png: file exists (use --force"),
        (["decode", "{dec}", "--prior", "0", "--out", "{d}/g.png"], "--prior must be between"),
        (["decode", "{dec}", "--prior", "2", "--out", "{d}/nowhere/g.png"], "does not exist"),
        (["decode", "{dec}", "--prior", "2", "--out", "{d}/g.jpg"], "should end in .png"),
        (["decode", "{dec}", "--out", "{d}/g.png"], "one of the arguments --z --prior is required"),
        (["export", "{d}/missing.h5", "--decoder", "{d}/o.onnx"], "missing.h5: no such file"),
        (["export", "{d}/random.onnx", "--decoder", "{d}/o.onnx"], "not an HDF5 file"),
        (["export", "{run}", "--decoder", "{d}/exists.onnx"], "exists.onnx: file exists"),
        (["export", "{run}", "--decoder", "{d}/o.onnx", "--encoder", "{d}/o.onnx"], "the same file"),
    ],
)
def test_bad_input_exits_2_with_one_line(bad_files: Path, run_file: Path, exported, argv, fragment, capsys) -> None:
    args = [a.format(d=bad_files, dec=exported[0], run=run_file) for a in argv]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors exit from the parser
        code = exc.code
    captured = capsys.readouterr()
    assert code == 2
    assert fragment in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert (bad_files / "exists.onnx").read_bytes() == b"keep"
    assert (bad_files / "exists.png").read_bytes() == b"keep"
    assert not (bad_files / "o.onnx").exists() and not (bad_files / "g.png").exists()


def test_bad_input_through_the_real_entry_point(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01junk")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "decode", "junk.onnx", "--prior", "2", "--out", "g.png"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("latent-explorer decode: error: junk.onnx: ")
    assert proc.stderr.count("\n") == 1


# --------------------------------------------------------------------------- units
def test_parse_z_rows() -> None:
    np.testing.assert_array_equal(parse_z(["0.5,-1", "1,2; 3 ,4"]), [[0.5, -1], [1, 2], [3, 4]])
    np.testing.assert_array_equal(parse_z(["-1 -2", " 1e-3 , +4 ;"]), np.float32([[-1, -2], [1e-3, 4]]))
    assert parse_z(["3.4e38,-3.4e38"]).dtype == np.float32
    with pytest.raises(ConfigError):
        parse_z([";"])
    for bad in ("1,,2", ",1,2", "1,2,", "1, ,2", "1_0,2", "1,2_000.5", "1e39,0", "0,-1e39"):
        with pytest.raises(ConfigError, match="--z: "):
            parse_z([bad])


def test_png_round_trip_grey_and_rgb(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for image in (rng.integers(0, 256, (7, 5), dtype=np.uint8), rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)):
        path = tmp_path / "x.png"
        path.write_bytes(encode_png(image))
        np.testing.assert_array_equal(read_png(path), image)
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2), np.float32))


def test_grid_shape() -> None:
    assert grid_shape(1) == (1, 1)
    assert grid_shape(10) == (3, 4)
    assert grid_shape(16) == (4, 4)
    assert grid_shape(5, cols=8) == (1, 5)
    assert grid_shape(5, cols=2) == (3, 2)
