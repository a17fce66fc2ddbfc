"""The likelihoods against closed forms computed by hand, and the discrete bound of dequantised
8-bit pixels (Theis et al. 2016): -log P(k) >= -E_u log p((k + u) / 256) + D log 256."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.config import LOG_STD_FLOOR, MIN_OBS_STD, ModelConfig
from models.diagnostics import diagnose
from models.latent.discrete import (
    LikelihoodKind,
    bits_per_dim,
    dequantize_uint8,
    likelihood_kind,
    needs_dequantization,
    unit_to_bytes,
)
from models.nn.likelihoods import BernoulliLikelihood, GaussianLikelihood, dequantize_bytes
from models.nn.vae import VAE


def test_bernoulli_log_likelihood_in_closed_form() -> None:
    """logits 0, log 3, -log 4 are p = 1/2, 3/4, 1/5; x = 1, 0, 1: log(1/2 * 1/4 * 1/5)."""
    logits = torch.tensor([[0.0, math.log(3.0), -math.log(4.0)]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    lp = BernoulliLikelihood().log_prob(logits, x)
    assert float(lp) == pytest.approx(math.log(0.025), abs=1e-12)
    # and a second sample flips every pixel: log(1/2 * 3/4 * 4/5)
    lp2 = BernoulliLikelihood().log_prob(logits.repeat(2, 1), torch.cat([x, 1 - x]))
    np.testing.assert_allclose(lp2.numpy(), [math.log(0.025), math.log(0.3)], atol=1e-12)


def test_gaussian_log_std_floor_is_the_config_s() -> None:
    lik = GaussianLikelihood(obs_std=None)
    with torch.no_grad():
        lik.log_std.fill_(-20.0)
    assert lik.std == pytest.approx(math.exp(LOG_STD_FLOOR), rel=1e-6)
    assert MIN_OBS_STD == pytest.approx(lik.std, rel=1e-6)
    lp = lik.log_prob(torch.zeros(1, 1), torch.zeros(1, 1)).detach()
    assert float(lp) == pytest.approx(-LOG_STD_FLOOR - 0.5 * math.log(2 * math.pi))


def test_dequantised_values_fill_each_bin_uniformly() -> None:
    k = np.repeat(np.array([0, 1, 128, 255], np.uint8)[None], 20000, 0)
    y = dequantize_uint8(k, 3)
    assert y.dtype == np.float32
    kf = k.astype(np.float64)
    assert (y >= kf / 256).all() and (y <= (kf + 1) / 256).all()
    np.testing.assert_allclose(y.mean(0), (k[0] + 0.5) / 256, atol=0.01 / 256)
    np.testing.assert_array_equal(dequantize_uint8(k, 3), y)  # seeded
    np.testing.assert_array_equal(unit_to_bytes(k / 255.0), k)
    t = dequantize_bytes(torch.from_numpy(k[:2000]), torch.Generator().manual_seed(0))
    assert (t >= torch.from_numpy(k[:2000]) / 256).all() and t.max() <= 1.0
    assert abs(float(t.mean(0)[2]) - 128.5 / 256) < 0.02 / 256


def test_likelihood_kinds() -> None:
    assert needs_dequantization("gaussian", "uint8/255")
    assert not needs_dequantization("gaussian", "none") and not needs_dequantization("bernoulli", "uint8/255")
    assert likelihood_kind("bernoulli", False) is LikelihoodKind.DISCRETE
    assert likelihood_kind("gaussian", True) == "discrete"
    assert likelihood_kind("gaussian", False) == "continuous"


def _constant_vae(mean: list[float], obs_std: float) -> VAE:
    """A 2 x 2 image model whose decoder outputs ``mean`` whatever z, and whose encoder gives
    the prior (mu 0, logvar 0): then log p(x|z) has no Monte Carlo noise and the rate is 0."""
    cfg = ModelConfig(arch="mlp", data_shape=(1, 2, 2), latent_dim=2, hidden=(3,),
                      likelihood="gaussian", obs_std=obs_std)
    vae = VAE(cfg).double()
    with torch.no_grad():
        for p in vae.parameters():
            p.zero_()
        vae.decoder.net[-1].bias.copy_(torch.tensor(mean, dtype=torch.float64))
    return vae


def test_the_dequantised_gaussian_bound_by_hand_on_a_tiny_image() -> None:
    """Bytes k = 0, 255, 128, 64 with noise u = .5, .25, .75, 0: y = (k + u) / 256; decoder mean
    0, 1, .5, .25 and sigma 0.1. By hand: -log P(k) <= sum_j [(y_j - m_j)^2 / (2 sigma^2)
    + log sigma + log(2 pi) / 2] + 4 log 256."""
    k = np.array([0, 255, 128, 64], dtype=np.float64)
    u = np.array([0.5, 0.25, 0.75, 0.0])
    y = (k + u) / 256
    m = [0.0, 1.0, 0.5, 0.25]
    sigma = 0.1
    nll_density = sum((yj - mj) ** 2 / (2 * sigma**2) + math.log(sigma) + 0.5 * math.log(2 * math.pi)
                      for yj, mj in zip(y, m))
    nll_discrete = nll_density + 4 * math.log(256)  # 16.65 nats; the density alone is -5.53
    vae = _constant_vae(m, sigma)
    x = y.reshape(1, 1, 2, 2)
    d = diagnose(vae, x, iw_samples=3, likelihood_kind="discrete")
    assert d.likelihood_kind == "discrete"
    assert d.distortion == pytest.approx(nll_discrete, rel=1e-7)  # log sigma stored in f32
    assert d.rate == pytest.approx(0.0, abs=1e-12)
    assert d.iwae == pytest.approx(-nll_discrete, rel=1e-7)
    assert d.bits_per_dim == pytest.approx(nll_discrete / (4 * math.log(2)), rel=1e-7)
    assert d.bits_per_dim > 0 and nll_density < 0  # the density alone would give negative bits
    # the same rows labelled continuous: the density, and no bits/dim
    c = diagnose(vae, x, iw_samples=3, likelihood_kind="continuous")
    assert c.distortion == pytest.approx(nll_density, rel=1e-6) and c.bits_per_dim is None
    assert bits_per_dim(nll_discrete, 4) == pytest.approx(d.bits_per_dim)


def test_diagnose_evaluates_in_eval_mode_and_restores_the_mode() -> None:
    vae = _constant_vae([0.0, 0.0, 0.0, 0.0], 1.0)
    seen = []
    vae.decoder.register_forward_pre_hook(lambda mod, args: seen.append(mod.training))
    vae.train()
    diagnose(vae, np.zeros((2, 1, 2, 2)), iw_samples=1)
    assert seen and not any(seen) and vae.training
