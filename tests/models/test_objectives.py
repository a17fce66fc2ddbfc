"""The objectives against closed forms: KL per dimension, and ELBO / IWAE on an exact linear-Gaussian
(probabilistic PCA) model, where log p(x), the true posterior and the ELBO are all known exactly.

The VAE is the project's own MLP with one hidden layer of 2D ReLUs whose weights make it exactly
linear (relu(h) - relu(-h) = h), so every term is computed by the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from models.config import ModelConfig, ObjectiveConfig
from models.objectives import (
    bits_per_dim,
    elbo_terms,
    iwae_bound,
    kl_per_dim,
    kl_weight,
    training_loss,
)
from models.vae import VAE

D, K_LAT, SIGMA = 6, 2, 0.5


# --------------------------------------------------------------------------- a linear VAE
class PPCA:
    """x = W z + b + sigma eps with orthogonal columns of W, so the exact posterior is diagonal."""

    def __init__(self, seed: int = 0) -> None:
        g = np.random.default_rng(seed)
        q = np.linalg.qr(g.standard_normal((D, K_LAT)))[0]
        self.W = q * np.array([3.0, 1.5])  # [D, k], columns orthogonal
        self.b = g.standard_normal(D)
        m = self.W.T @ self.W + SIGMA**2 * np.eye(K_LAT)  # diagonal
        self.post_A = np.linalg.solve(m, self.W.T)  # posterior mean = A (x - b)
        self.post_var = SIGMA**2 / np.diag(m)  # posterior variances [k]

    def sample(self, n: int, seed: int = 1) -> np.ndarray:
        g = np.random.default_rng(seed)
        z = g.standard_normal((n, K_LAT))
        return z @ self.W.T + self.b + SIGMA * g.standard_normal((n, D))

    def log_px(self, x: np.ndarray) -> np.ndarray:
        """Exact log N(x; b, W W^T + sigma^2 I), per row."""
        c = self.W @ self.W.T + SIGMA**2 * np.eye(D)
        r = x - self.b
        _, logdet = np.linalg.slogdet(c)
        maha = np.einsum("ni,ij,nj->n", r, np.linalg.inv(c), r)
        return -0.5 * (D * math.log(2 * math.pi) + logdet + maha)

    def vae(self, mean_shift: float = 0.0, var_scale: float = 1.0) -> VAE:
        """The project's VAE set to this model; the encoder is the exact posterior, optionally with
        its mean shifted by ``mean_shift`` and its variances scaled by ``var_scale``."""
        cfg = ModelConfig(
            arch="mlp", data_shape=(D,), latent_dim=K_LAT, hidden=(2 * D,),
            likelihood="gaussian", obs_std=SIGMA,
        )
        vae = VAE(cfg).double()
        eye = np.eye(D)
        pm = np.vstack([eye, -eye])  # [2D, D]: relu(+x), relu(-x)
        a = self.post_A
        with torch.no_grad():
            enc = vae.encoder
            enc.body[0].weight.copy_(torch.from_numpy(pm))
            enc.body[0].bias.zero_()
            enc.head.mu.weight.copy_(torch.from_numpy(np.hstack([a, -a])))
            enc.head.mu.bias.copy_(torch.from_numpy(-a @ self.b + mean_shift))
            enc.head.logvar.weight.zero_()
            enc.head.logvar.bias.copy_(torch.from_numpy(np.log(self.post_var * var_scale)))
            dec = vae.decoder.net
            dec[0].weight.copy_(torch.from_numpy(np.vstack([self.W, -self.W])))
            dec[0].bias.zero_()
            dec[2].weight.copy_(torch.from_numpy(np.hstack([eye, -eye])))
            dec[2].bias.copy_(torch.from_numpy(self.b))
        return vae

    def exact_elbo(self, x: np.ndarray, mean_shift: float, var_scale: float) -> np.ndarray:
        """log p(x) - KL(q(z|x) || p(z|x)), both Gaussians with diagonal covariance."""
        m_true = (x - self.b) @ self.post_A.T
        v_true = self.post_var
        m_q = m_true + mean_shift
        v_q = v_true * var_scale
        kl = 0.5 * (np.log(v_true / v_q) + (v_q + (m_q - m_true) ** 2) / v_true - 1).sum(1)
        return self.log_px(x) - kl


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
    np.testing.assert_allclose(terms.rate.detach().numpy(), terms.kl_per_dim.sum(1).detach().numpy())

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
