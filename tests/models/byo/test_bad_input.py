"""Every bad pair and every bad data file: exit 2, one line, and the user's files untouched."""

from __future__ import annotations

import numpy as np
import pytest
from byo_pairs import LinearGaussian, bernoulli_pair
from byo_run import cli, digest, one_error_line
from PIL import Image

from models.data import load_dataset
from models.errors import DataError

D = 16


def _binary(folder, n=40, d=D):
    path = folder / "bits.npy"
    np.save(path, (np.random.default_rng(0).random((n, d)) > 0.5).astype(np.float32))
    return path


def _diagnose(capsys, enc, dec, data, *extra):
    return cli(capsys, "diagnose", "--encoder", enc, "--decoder", dec, "--data", data,
               "--iw-samples", 2, *extra)


def test_a_good_bernoulli_pair_diagnoses(tmp_path, capsys):
    enc, dec = bernoulli_pair(tmp_path)
    code, out, err = _diagnose(capsys, enc, dec, _binary(tmp_path), "--json")
    assert code == 0, err
    probs = bernoulli_pair(tmp_path, out="probabilities", prefix="p")
    code, out2, err = _diagnose(capsys, *probs, _binary(tmp_path), "--json")
    assert code == 0, err


@pytest.mark.parametrize("case, words", [
    (dict(dec_k=4), "do not fit: the encoder gives latent vectors [N, 3] but the decoder takes [N, 4]"),
    (dict(dec_inputs=2), "the decoder has 2 inputs"),
    (dict(string_output=True), "is tensor(string), not numbers"),
    (dict(enc_outputs=1), "the encoder has 1 output; it needs two"),
])
def test_bad_pairs(tmp_path, capsys, case, words):
    enc, dec = bernoulli_pair(tmp_path, **case)
    data = _binary(tmp_path)
    before = digest(tmp_path)
    line = one_error_line(*_diagnose(capsys, enc, dec, data))
    assert words in line
    assert digest(tmp_path) == before


def test_truncated_file(tmp_path, capsys):
    enc, dec = bernoulli_pair(tmp_path)
    dec.write_bytes(dec.read_bytes()[: len(dec.read_bytes()) // 2])
    data = _binary(tmp_path)
    before = digest(tmp_path)
    line = one_error_line(*_diagnose(capsys, enc, dec, data))
    assert str(dec) in line and "not a usable ONNX model" in line
    assert digest(tmp_path) == before


def test_pair_against_data(tmp_path, capsys):
    enc, dec = bernoulli_pair(tmp_path)
    wrong = tmp_path / "wide.npy"
    np.save(wrong, np.zeros((20, D + 1), np.float32))
    line = one_error_line(*_diagnose(capsys, enc, dec, wrong))
    assert "samples of shape [17]" in line and "decoder outputs [16]" in line
    big = tmp_path / "big.npy"
    np.save(big, np.full((20, D), 3.0, np.float32))
    line = one_error_line(*_diagnose(capsys, enc, dec, big))
    assert "[3, 3]" in line and "needs values in [0, 1]" in line


def test_probabilities_that_are_not(tmp_path, capsys):
    enc, dec = bernoulli_pair(tmp_path)  # outputs logits
    line = one_error_line(*_diagnose(capsys, enc, dec, _binary(tmp_path),
                                     "--decoder-output", "probabilities"))
    assert "so not probabilities; give --decoder-output logits" in line


def test_options_a_pair_needs(tmp_path, capsys):
    model = LinearGaussian()
    enc, dec = model.write(tmp_path)
    np.save(tmp_path / "x.npy", model.sample(20))
    line = one_error_line(*_diagnose(capsys, enc, dec, tmp_path / "x.npy"))
    assert "give --likelihood" in line
    line = one_error_line(*_diagnose(capsys, enc, dec, tmp_path / "x.npy", "--likelihood", "gaussian"))
    assert "--obs-std" in line
    line = one_error_line(*cli(capsys, "diagnose", "--encoder", enc, "--data", tmp_path / "x.npy"))
    assert "no Latent Explorer metadata" in line
    line = one_error_line(*cli(capsys, "diagnose"))
    assert "name a run file" in line


# --------------------------------------------------------------------------- bad data files
def _png(path, shape=(8, 8), mode="L", value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full(shape if mode == "L" else (*shape, len(mode)), value, np.uint8)
    Image.fromarray(arr, mode).save(path)


def _folder(root, n=12, **kw):
    for i in range(n):
        _png(root / f"{i:02d}.png", **kw)
    return root


def _bad_data(tmp_path):
    cases = {}
    (tmp_path / "empty").mkdir()
    cases["empty"] = (tmp_path / "empty", "no PNG or JPEG images")
    bad = _folder(tmp_path / "unreadable")
    (bad / "05.png").write_bytes(b"not an image at all")
    cases["unreadable"] = (bad, "05.png: not a readable PNG or JPEG image")
    mixed = _folder(tmp_path / "channels")
    _png(mixed / "07.png", mode="RGB")
    cases["channels"] = (mixed, "07.png: is RGB (3 channels) but")
    sizes = _folder(tmp_path / "sizes")
    _png(sizes / "03.png", shape=(8, 9))
    cases["sizes"] = (sizes, "03.png: is 9x8 but")
    alpha = _folder(tmp_path / "alpha", mode="RGBA")
    cases["alpha"] = (alpha, "has an alpha channel")
    nan = np.zeros((20, 4, 4), np.float32)
    nan[13, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases["nan"] = (tmp_path / "nan.npy", "NaN or infinite values (first in row 13")
    inf = np.zeros((20, 16))
    inf[4, 0] = np.inf
    np.savez(tmp_path / "inf.npz", x=inf)
    cases["inf"] = (tmp_path / "inf.npz", "NaN or infinite values (first in row 4")
    np.save(tmp_path / "rank.npy", np.zeros(30, np.float32))
    cases["rank"] = (tmp_path / "rank.npy", "has rank 1")
    np.save(tmp_path / "few.npy", np.zeros((3, 16), np.float32))
    cases["few"] = (tmp_path / "few.npy", "has 3 samples; at least 10 are needed")
    (tmp_path / "notnpy.npy").write_bytes(b"hello, this is text")
    cases["notnpy"] = (tmp_path / "notnpy.npy", "is not a NumPy array")
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]] * 12, dtype=object), allow_pickle=True)
    cases["objects"] = (tmp_path / "obj.npy", "holds Python objects")
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, np.zeros((50, 16), np.float32))
    trunc.write_bytes(trunc.read_bytes()[:400])
    cases["truncated"] = (trunc, "truncated")
    np.savez(tmp_path / "two.npz", x=np.zeros((20, 16), np.float32))
    cases["member"] = (f"{tmp_path / 'two.npz'}:nope", "no array 'nope'")
    return cases


def test_bad_data_files(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    cases = _bad_data(data)
    enc, dec = bernoulli_pair(tmp_path)
    before = digest(tmp_path)
    for name, (spec, words) in cases.items():
        with pytest.raises(DataError) as err:
            ds = load_dataset(str(spec))
            ds.read(np.arange(len(ds)))
        assert words in str(err.value), (name, str(err.value))
        assert len(str(err.value).splitlines()) == 1
        code, out, err_text = _diagnose(capsys, enc, dec, spec)
        assert words in one_error_line(code, out, err_text), name
    assert digest(tmp_path) == before


def test_progress_only_on_a_terminal(tmp_path, capsys, monkeypatch):
    import io

    from models.cli import diagnose_pair

    class Tty(io.StringIO):
        def isatty(self):
            return True

    enc, dec = bernoulli_pair(tmp_path)
    data = _binary(tmp_path, n=300)
    code, out, err = _diagnose(capsys, enc, dec, data, "--batch-size", 128)
    assert code == 0 and err == ""  # not a terminal: nothing on stderr
    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    show = diagnose_pair._progress()
    for done in (128, 256, 300):
        show(done, 300)
    assert tty.getvalue() == ("\r  diagnosing: 128 of 300 rows\r  diagnosing: 256 of 300 rows"
                              "\r  diagnosing: 300 of 300 rows\n")
    monkeypatch.undo()
    line = one_error_line(*cli(capsys, "diagnose", "--encoder", enc, "--decoder", dec))
    assert "--data SPEC is needed" in line


def test_swapped_files_are_named(tmp_path, capsys):
    """Our exports say their role: given the wrong way round, the line says which is which."""
    import onnx

    enc, dec = bernoulli_pair(tmp_path)
    model = onnx.load(str(dec))
    model.metadata_props.add(key="latent_explorer.role", value='"decoder"')
    onnx.save(model, str(dec))
    line = one_error_line(*_diagnose(capsys, dec, enc, _binary(tmp_path)))
    assert "its metadata says it is the decoder; give it as --decoder" in line
