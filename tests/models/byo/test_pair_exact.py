"""A linear-Gaussian pair built with onnx.helper (no torch) whose exact answers are known.

The encoder outputs the exact posterior, so every importance weight equals p(x): the ELBO's
expectation and every IWAE bound are log p(x), the gap is 0; the padded latent dimensions output
the prior and are ignored by the decoder, so they are collapsed with zero KL.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from byo_pairs import LinearGaussian
from byo_run import cli_without_torch, digest, json_of

from models.diagnostics import JSON_KEYS
from models.io.onnx_pair import PairOptions
from models.io.onnx_partner import open_pair
from models.io.pair_diagnosis import diagnose_pair

N = 400


@pytest.fixture(scope="module")
def model():
    return LinearGaussian(d_x=6, k=2, pad=2, sigma=0.3)


@pytest.fixture(scope="module")
def pair(model, tmp_path_factory):
    enc, dec = model.write(tmp_path_factory.mktemp("lg"))
    return open_pair(enc, dec, PairOptions(likelihood="gaussian", obs_std=model.sigma))


def test_every_bound_equals_the_exact_log_likelihood(model, pair):
    x = model.sample(N)
    exact = float(model.log_px(x).mean())
    # The ELBO is a Monte Carlo mean over N*K draws of log p(x|z): its standard error, measured
    # on draws of the same kind, bounds how far it may be from log p(x).
    rng = np.random.default_rng(5)
    mu, lv = pair.encode(x)
    z = mu + np.exp(0.5 * lv) * rng.standard_normal(mu.shape)
    spread = float(np.std(pair.log_px_given_z(x, z)))
    for k in (1, 3, 20, 100):
        d = diagnose_pair(pair, x, iw_samples=k, batch_size=64, seed=k)
        assert d.iwae == pytest.approx(exact, abs=1e-4), k  # exact for every K: all weights = p(x)
        se = spread / math.sqrt(N * k)
        assert abs(d.elbo - exact) < 5 * se, (k, d.elbo, exact, se)
        assert abs(d.elbo_gap) < 5 * se + 1e-4
        assert d.active_units == 2 and d.collapsed_dims == [2, 3]
        assert d.kl_per_dim[2] == 0.0 and d.kl_per_dim[3] == 0.0
        assert d.activity_per_dim[2] == 0.0 and d.activity_per_dim[3] == 0.0
        assert min(d.kl_per_dim[:2]) > 0.5
        assert 0.0 < d.mutual_info <= math.log(N) + 1e-9


@pytest.mark.parametrize("scale", ["log_std", "std"])
def test_spread_conventions_give_the_same_diagnosis(model, pair, scale, tmp_path):
    """An encoder giving log sigma or sigma (named so) and a decoder giving log sigma as a second
    output describe the same model: the same figures as logvar with --obs-std."""
    enc, dec = model.write(tmp_path, scale=scale, sigma_output=True)
    other = open_pair(enc, dec, PairOptions(likelihood="gaussian"))
    assert other.encoder_scale == scale and other.obs_std is None
    x = model.sample(100)
    a = diagnose_pair(pair, x, iw_samples=10)
    b = diagnose_pair(other, x, iw_samples=10)
    assert b.iwae == pytest.approx(a.iwae, abs=1e-4)
    assert b.elbo == pytest.approx(a.elbo, abs=1e-4)
    assert b.kl_per_dim == pytest.approx(a.kl_per_dim, abs=1e-5)


def test_cli_without_torch_gives_the_json_keys(model, tmp_path):
    """The whole command, with torch made unimportable, on a .npy file; nothing is written."""
    enc, dec = model.write(tmp_path)
    data = tmp_path / "x.npy"
    np.save(data, model.sample(300))
    before = digest(tmp_path)
    res = cli_without_torch("diagnose", "--encoder", enc, "--decoder", dec, "--data", data,
                            "--likelihood", "gaussian", "--obs-std", model.sigma,
                            "--iw-samples", 5, "--json")
    assert res.returncode == 0, res.stderr
    out = json_of(res.stdout)
    assert tuple(out) == tuple(JSON_KEYS)
    assert out["iwae"] == pytest.approx(float(model.log_px(model.sample(300)).mean()), abs=1e-4)
    assert out["collapsed_dims"] == [2, 3] and out["n_samples"] == 300
    assert digest(tmp_path) == before
    text = cli_without_torch("diagnose", "--encoder", enc, "--decoder", dec, "--data", data,
                             "--likelihood", "gaussian", "--obs-std", model.sigma, "--iw-samples", 2)
    assert text.returncode == 0, text.stderr
    assert "verdict:" in text.stdout and "Trained elsewhere" in text.stdout
    assert "lower beta" not in text.stdout


def test_remedies_for_a_model_trained_elsewhere():
    """With beta unknown, the remedy points at the training code, never says "lower beta"."""
    from models.io.pair_diagnosis import remedy_elsewhere

    full = remedy_elsewhere({"active_units": 0, "collapsed_dims": [0, 1]})
    part = remedy_elsewhere({"active_units": 1, "collapsed_dims": [1]})
    assert "KL weight" in full and "free bits" in full and "KL weight is unknown" in part
    assert "lower beta" not in full + part
    assert remedy_elsewhere({"active_units": 2, "collapsed_dims": []}) == ""
