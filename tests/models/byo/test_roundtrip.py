"""An exported pair of a trained run, diagnosed through ONNX, gives the run file's diagnosis.

The latent statistics need no Monte Carlo over z (KL and activity per dimension are closed form
on the same encodings; I(X;Z) uses the same seeded draws), so they agree to float precision. The
ELBO and the IWAE bound are Monte Carlo means over K draws of z per row, drawn by torch for the
run and by numpy for the pair: they agree within the Monte Carlo error, measured here as the
spread of the pair's estimate over seeds of the draws on the same rows (tolerance 4 standard
errors of the difference of two independent estimates).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from byo_run import cli, json_of

from models.data import load_dataset
from models.diagnostics import JSON_KEYS

ROWS, K, SEEDS = 400, 20, 4


def _train_and_compare(tmp_path, capsys, data, *train_args):
    run = tmp_path / "run.h5"
    code, _, err = cli(capsys, "train", "--data", data, "--out", run, "--batch-size", 32,
                       "--log-every", 50, *train_args)
    assert code == 0, err
    enc, dec = tmp_path / "m.encoder.onnx", tmp_path / "m.decoder.onnx"
    code, _, err = cli(capsys, "export", run, "--decoder", dec, "--encoder", enc)
    assert code == 0, err
    # The same ROWS rows for every seed (a .npy file of them, all used), so the seeds change only
    # the draws of z and their spread is the Monte Carlo error alone.
    ds = load_dataset(data)
    rows = np.linspace(0, len(ds) - 1, ROWS).astype(np.int64)
    stored = ds.read(rows)
    if ds.scaling == "uint8/255":  # 8-bit data stay 8-bit (a Gaussian on them is dequantised)
        stored = np.rint(stored * 255).astype(np.uint8)
    np.save(tmp_path / "rows.npy", stored)
    common = ["--data", tmp_path / "rows.npy", "--iw-samples", K, "--json"]
    code, out, err = cli(capsys, "diagnose", run, *common)
    assert code == 0, err
    ours = json_of(out)
    pair = []
    for seed in range(SEEDS):  # the decoder alone: the encoder is found beside it
        code, out, err = cli(capsys, "diagnose", "--decoder", dec, *common, "--seed", seed)
        assert code == 0, err
        pair.append(json_of(out))
    first = pair[0]
    assert tuple(first) == tuple(JSON_KEYS)
    assert first["active_units"] == ours["active_units"]
    assert first["collapsed_dims"] == ours["collapsed_dims"]
    assert np.abs(np.subtract(first["kl_per_dim"], ours["kl_per_dim"])).max() < 0.01
    assert first["rate"] == pytest.approx(ours["rate"], abs=1e-3)
    assert first["mutual_info"] == pytest.approx(ours["mutual_info"], abs=1e-3)
    for key in ("elbo", "iwae"):
        se = float(np.std([p[key] for p in pair], ddof=1))
        assert abs(first[key] - ours[key]) < 4 * math.sqrt(2) * se + 1e-3, (key, first[key], ours[key], se)
    return ours, first


@pytest.mark.slow
def test_mlp_on_mnist(tmp_path, capsys):
    _train_and_compare(tmp_path, capsys, "mnist", "--max-samples", 2000, "--epochs", 4,
                       "--hidden", 64, "--latent-dim", 6)


@pytest.mark.slow
def test_conv_on_shapes_gaussian(tmp_path, capsys):
    ours, pair = _train_and_compare(tmp_path, capsys, "shapes:32", "--arch", "conv",
                                    "--max-samples", 600, "--epochs", 2, "--latent-dim", 4,
                                    "--likelihood", "gaussian", "--obs-std", 0.2)
    assert ours["distortion"] == pytest.approx(pair["distortion"], rel=0.05)
