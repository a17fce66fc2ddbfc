"""The objectives against closed forms: KL per dimension, and ELBO / IWAE on an exact
linear-Gaussian (probabilistic PCA) model, where log p(x), the true posterior and the ELBO are all
known exactly.

The model (tests/models/ppca_model.py) is the project's own VAE with weights that make it exactly
linear, so every term is computed by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from models.config import ModelConfig, ObjectiveConfig
from models.latent.discrete import bits_per_dim
from models.errors import ConfigError
from models.nn.objectives import (
    ElboTerms,
    elbo_terms,
    iwae_bound,
    kl_per_dim,
    kl_weight,
    log_normal,
    log_normal_from_noise,
    training_loss,
)
from models.nn.vae import VAE
from ppca_model import K_LAT, PPCA


@pytest.fixture(scope="module")
def ppca() -> PPCA:
    return PPCA()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- KL per dimension
def test_kl_per_dim_matches_torch_distributions() -> None:
    g = _gen(3)
    mu = torch.randn(50, 7, generator=g) * 2
    logvar = torch.randn(50, 7, generator=g) * 1.5
    ours = kl_per_dim(mu, logvar)
    ref = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    assert ours.shape == (50, 7)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    assert torch.all(kl_per_dim(torch.zeros(3, 2), torch.zeros(3, 2)) == 0)


# --------------------------------------------------------------------------- exact linear model
def test_the_linear_vae_is_the_ppca_model(ppca: PPCA) -> None:
    """Guards the fixture: the ReLU network really computes W z + b and A (x - b)."""
    vae = ppca.vae()
    z = torch.randn(5, K_LAT, generator=_gen(), dtype=torch.float64)
    expect = z.numpy() @ ppca.W.T + ppca.b
    np.testing.assert_allclose(vae.decode(z).detach().numpy(), expect, atol=1e-10)
    x = ppca.sample(5)
    mu, logvar = vae.encode(torch.from_numpy(x))
    np.testing.assert_allclose(mu.detach().numpy(), (x - ppca.b) @ ppca.post_A.T, atol=1e-10)
    np.testing.assert_allclose(logvar.detach().numpy(), np.log(ppca.post_var)[None].repeat(5, 0))


def test_exact_posterior_makes_every_importance_weight_log_px(ppca: PPCA) -> None:
    """With q(z|x) = p(z|x), log p(x,z) - log q(z|x) = log p(x) for every z: IWAE_K = log p(x) for
    any K, and the ELBO equals log p(x) in expectation. Any missing constant shows up here."""
    vae = ppca.vae()
    x = ppca.sample(200)
    xt = torch.from_numpy(x)
    exact = ppca.log_px(x)
    for k in (1, 7):
        iw = iwae_bound(vae, xt, k, generator=_gen(k)).numpy()
        np.testing.assert_allclose(iw, exact, atol=1e-8)
    terms = elbo_terms(vae, xt, n_samples=400, generator=_gen())
    np.testing.assert_allclose(terms.elbo.detach().numpy().mean(), exact.mean(), atol=0.02)


def test_elbo_and_iwae_bound_log_px_and_iwae_tightens_with_k(ppca: PPCA) -> None:
    """A deliberately wrong posterior (shifted, too wide): ELBO = log p(x) - KL(q || p(z|x)) exactly
    in expectation; IWAE_K rises with K from the ELBO towards log p(x) and stays below it."""
    shift, scale = 0.4, 3.0
    vae = ppca.vae(mean_shift=shift, var_scale=scale)
    x = ppca.sample(400, seed=2)
    xt = torch.from_numpy(x)
    log_px = ppca.log_px(x).mean()
    elbo_exact = ppca.exact_elbo(x, shift, scale).mean()
    assert log_px - elbo_exact > 0.5  # the case is not trivial

    terms = elbo_terms(vae, xt, n_samples=200, generator=_gen(1))
    elbo_mc = terms.elbo.detach().numpy()
    se = elbo_mc.std() / math.sqrt(len(elbo_mc)) + 0.01
    assert abs(elbo_mc.mean() - elbo_exact) < 4 * se
    # the decomposition: rate is the closed-form KL to the prior, D the rest
    rate = terms.rate.detach().numpy()
    np.testing.assert_allclose(rate, terms.kl_per_dim.sum(1).detach().numpy())

    iw1 = iwae_bound(vae, xt, 1, generator=_gen(1)).numpy()
    assert abs(iw1.mean() - elbo_exact) < 4 * iw1.std() / math.sqrt(len(iw1))
    ks = (1, 3, 10, 100, 1000)
    iw = {k: iwae_bound(vae, xt, k, generator=_gen(k)).numpy().mean() for k in ks}
    assert iw[1] < iw[3] < iw[10] < iw[100] + 0.01
    assert all(iw[k] <= log_px + 0.01 for k in ks)
    # by K = 1000 the bound has closed the gap of several nats to within Monte Carlo noise
    assert log_px - iw[1000] < 0.02


def test_iwae_k1_equals_single_sample_elbo_in_expectation(ppca: PPCA) -> None:
    vae = ppca.vae(mean_shift=-0.3, var_scale=0.5)
    x = torch.from_numpy(ppca.sample(2000, seed=5))
    iw1 = iwae_bound(vae, x, 1, generator=_gen(2)).numpy()
    elbo = elbo_terms(vae, x, generator=_gen(3)).elbo.detach().numpy()
    se = math.sqrt(iw1.var() / len(iw1) + elbo.var() / len(elbo))
    assert abs(iw1.mean() - elbo.mean()) < 4 * se


# --------------------------------------------------------------------------- the training loss
def test_training_loss_is_negative_elbo_at_beta_1_and_free_bits_floor() -> None:
    cfg = ModelConfig(arch="mlp", data_shape=(4,), latent_dim=3, hidden=(8,),
                      likelihood="gaussian", obs_std=1.0)
    torch.manual_seed(0)
    vae = VAE(cfg)
    x = torch.randn(16, 4, generator=_gen())
    terms = elbo_terms(vae, x, generator=_gen(1))
    torch.testing.assert_close(training_loss(terms, 1.0), -terms.elbo.mean())
    big = 10.0  # every dimension below the floor: the loss is D + beta * d * lambda
    floored = training_loss(terms, 2.0, free_bits=big)
    torch.testing.assert_close(floored, terms.distortion.mean() + 2.0 * 3 * big)


def test_kl_weight_warms_up_linearly() -> None:
    obj = ObjectiveConfig(beta=4.0, warmup_steps=100)
    assert kl_weight(0, obj) == 0.0
    assert kl_weight(25, obj) == pytest.approx(1.0)
    assert kl_weight(100, obj) == 4.0
    assert kl_weight(1000, obj) == 4.0
    assert kl_weight(0, ObjectiveConfig(beta=2.0)) == 2.0


def test_bits_per_dim() -> None:
    assert bits_per_dim(784 * math.log(2.0), 784) == pytest.approx(1.0)


def test_free_bits_floor_each_dimension_s_batch_mean() -> None:
    """lambda = 0.5 on mixed per-dimension KLs (2 samples, 4 dims). Kingma et al. (2016) floor
    each dimension's batch-mean KL: 6.7 + 0.5 + 0.5 + 0.9 = 8.60 nats. A per-sample clamp
    would give 8.75 and a floor on the total KL 7.80; only the first is the definition."""
    kl = torch.tensor([[6.7, 0.0, 0.0, 0.2], [6.7, 0.0, 0.4, 1.6]], dtype=torch.float64)
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    terms = ElboTerms(distortion=torch.zeros(2, dtype=torch.float64), kl_per_dim=kl, mu=zeros,
                      logvar=zeros)
    assert float(training_loss(terms, 1.0, free_bits=0.5)) == pytest.approx(8.60, abs=1e-12)
    assert float(training_loss(terms, 2.0, free_bits=0.5)) == pytest.approx(17.20, abs=1e-12)
    assert float(training_loss(terms, 1.0)) == pytest.approx(7.80, abs=1e-12)


def test_iwae_refuses_fewer_than_one_sample(ppca: PPCA) -> None:
    vae = ppca.vae()
    x = torch.from_numpy(ppca.sample(3))
    for k in (0, -2):
        with pytest.raises(ConfigError, match="at least 1"):
            iwae_bound(vae, x, k)


def test_log_q_from_the_noise_keeps_float32_precision() -> None:
    """sigma = 1e-3 at mu = 1e3 in float32: (z - mu)^2 / sigma^2 from z loses the noise to
    rounding (z is stored to about 6e-5, i.e. 0.06 sigma); from eps it is exact."""
    mu = torch.full((1, 4), 1000.0)
    logvar = torch.full((1, 4), 2 * math.log(1e-3))
    eps = torch.tensor([[0.3, -1.2, 2.0, 0.01]])
    z = mu + torch.exp(0.5 * logvar) * eps
    exact = -0.5 * (4 * math.log(2 * math.pi) + float(logvar.sum()) + float(eps.square().sum()))
    assert float(log_normal_from_noise(eps, logvar)) == pytest.approx(exact, abs=1e-4)
    assert abs(float(log_normal(z, mu, logvar)) - exact) > 1e-2  # the cancelling form is off
